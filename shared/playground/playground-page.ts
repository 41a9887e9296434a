/**
 * The playground: one self-contained HTML page (inline CSS and vanilla JS, nothing from a CDN) to
 * try the API by hand — create a job (with image upload by picker or drag-and-drop), follow it
 * live, browse your results and edit them further. It is static: it finds the API next to its own
 * URL (…/images/playground → …/images), or at `?api=<base>`, so it can also be hosted as a file.
 *
 * @module
 */

/** Page styles. */
export const PLAYGROUND_CSS = `
:root { color-scheme: light dark; --fg: #1d1d1f; --muted: #666; --bg: #f6f6f7; --card: #fff; --line: #d8d8dc;
  --accent: #2f5bea; --bad: #b3261e; --ok: #1b7f3b; --warn: #9a6700; font: 15px/1.45 system-ui, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --muted: #aaa; --bg: #161618; --card: #222226; --line: #3a3a40; } }
* { box-sizing: border-box; } body { margin: 0; background: var(--bg); color: var(--fg); }
header { padding: .8rem 1.2rem; border-bottom: 1px solid var(--line); display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.2rem; margin: 0; } header small { color: var(--muted); }
main { display: grid; grid-template-columns: minmax(300px, 420px) 1fr; gap: 1.2rem; padding: 1.2rem; }
@media (max-width: 800px) { main { grid-template-columns: 1fr; } }
section, form { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem; }
h2 { font-size: 1rem; margin: 0 0 .6rem; }
label { display: block; font-weight: 600; margin: .6rem 0 .2rem; }
input, select, textarea, button { font: inherit; color: inherit; }
input[type=text], input[type=number], input[type=password], select, textarea { width: 100%; padding: .4rem .5rem;
  border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
textarea { min-height: 5rem; resize: vertical; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 0 .8rem; }
.check { display: flex; gap: .4rem; align-items: center; font-weight: normal; }
button { cursor: pointer; border: 1px solid var(--line); border-radius: 6px; padding: .35rem .8rem; background: var(--bg); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; font-weight: 600; padding: .55rem 1.2rem; margin-top: 1rem; }
button:disabled { opacity: .6; cursor: progress; }
#dropzone { margin-top: .6rem; border: 2px dashed var(--line); border-radius: 8px; padding: 1rem; text-align: center; color: var(--muted); }
#dropzone.over { border-color: var(--accent); color: var(--accent); }
#files { position: absolute; width: 1px; height: 1px; opacity: 0; }
.file-list { list-style: none; padding: 0; margin: .4rem 0 0; } .file-list li { display: flex; gap: .5rem; align-items: center; margin: .2rem 0; }
.file-list img, #editing img { width: 40px; height: 40px; object-fit: cover; border-radius: 4px; }
#editing { margin-top: .8rem; padding: .5rem; border-radius: 8px; background: color-mix(in srgb, var(--accent) 12%, transparent); display: flex; gap: .6rem; align-items: center; }
#editing[hidden], [hidden] { display: none !important; }
.error { border: 1px solid var(--bad); color: var(--bad); border-radius: 8px; padding: .6rem .8rem; margin: .8rem 0; background: color-mix(in srgb, var(--bad) 8%, transparent); }
.error ul { margin: .3rem 0 0; padding-left: 1.2rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 99px; font-size: .85rem; font-weight: 600; border: 1px solid currentColor; }
.badge[data-status=succeeded] { color: var(--ok); } .badge[data-status=failed], .badge[data-status=moderated] { color: var(--bad); }
.badge[data-status=queued], .badge[data-status=submitting], .badge[data-status=running] { color: var(--warn); }
#result-image { width: 100%; max-width: 480px; height: auto; max-height: 60vh; object-fit: contain; margin-top: .6rem; border-radius: 8px; display: block; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .8rem; margin-top: .6rem; }
.gallery figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: .4rem; display: flex; flex-direction: column; gap: .3rem; }
.gallery .thumb { aspect-ratio: 1; width: 100%; object-fit: cover; border-radius: 6px; background: var(--bg); display: grid; place-items: center; color: var(--muted); }
.gallery figcaption { font-size: .85rem; overflow-wrap: anywhere; }
.muted { color: var(--muted); font-size: .85rem; } code { font-size: .85em; overflow-wrap: anywhere; }
`;

/** The page's markup (between <body> tags). */
export const PLAYGROUND_BODY = `
<header>
  <h1>FLUX Kontext playground</h1>
  <small>API: <code id="api-base" data-testid="api-base"></code></small>
  <small><a id="docs-link" href="./docs">API reference</a> · <a id="spec-link" href="./openapi.json">openapi.json</a></small>
</header>
<main>
  <form id="create-form" data-testid="create-form" novalidate>
    <h2>New image</h2>
    <label for="prompt">Prompt</label>
    <textarea id="prompt" name="prompt" data-testid="prompt" maxlength="4000" placeholder="A small furry elephant pet looks out from a cat house"></textarea>
    <label for="model">Model</label>
    <select id="model" name="model" data-testid="model">
      <option value="flux-kontext-pro" selected>flux-kontext-pro</option>
      <option value="flux-kontext-max">flux-kontext-max</option>
      <option value="flux-bagel-alpha">flux-bagel-alpha (edits only)</option>
    </select>
    <div class="row">
      <div data-only="kontext"><label for="aspect_ratio">Aspect ratio</label>
        <select id="aspect_ratio" name="aspect_ratio" data-testid="aspect-ratio"><option value="">default (1:1)</option>
          <option>1:1</option><option>16:9</option><option>9:16</option><option>4:3</option><option>3:4</option>
          <option>3:2</option><option>2:3</option><option>21:9</option><option>9:21</option></select></div>
      <div><label for="seed">Seed</label><input id="seed" name="seed" type="number" step="1" placeholder="random" data-testid="seed"></div>
      <div><label for="output_format">Output format</label>
        <select id="output_format" name="output_format" data-testid="output-format"><option value="jpeg" selected>jpeg</option><option value="png">png</option></select></div>
      <div><label for="safety_tolerance">Safety tolerance</label>
        <select id="safety_tolerance" name="safety_tolerance" data-testid="safety-tolerance"><option value="">default (2)</option>
          <option>0</option><option>1</option><option>2</option><option>3</option><option>4</option><option>5</option><option>6</option></select></div>
      <div data-only="bagel" hidden><label for="steps">Steps</label><input id="steps" name="steps" type="number" min="1" max="150" placeholder="50" data-testid="steps"></div>
      <div data-only="bagel" hidden><label for="guidance">Guidance</label><input id="guidance" name="guidance" type="number" min="0.1" max="99" step="0.1" placeholder="3.0" data-testid="guidance"></div>
    </div>
    <label class="check" data-only="kontext"><input type="checkbox" id="prompt_upsampling" data-testid="prompt-upsampling"> Prompt upsampling</label>
    <div id="dropzone" data-testid="dropzone" tabindex="0" role="button" aria-describedby="files-help">
      Drop images here, or <label for="files" style="display:inline;color:var(--accent);cursor:pointer">choose files</label>
      <input id="files" type="file" accept="image/png,image/jpeg,image/webp,image/gif" multiple data-testid="file-input" aria-label="Input images">
      <div id="files-help" class="muted">Up to 4 (PNG, JPEG, WebP, GIF; ≤ 20 MB): input_image, input_image_2, …</div>
    </div>
    <ul id="file-list" class="file-list" data-testid="file-list" aria-label="Chosen images"></ul>
    <div id="editing" data-testid="editing" hidden>
      <img id="editing-thumb" alt="">
      <div>Editing job <code id="editing-id" data-testid="editing-id"></code><div class="muted" id="editing-prompt"></div></div>
      <button type="button" id="clear-edit" data-testid="clear-edit">Stop editing</button>
    </div>
    <details id="auth"><summary>Access token</summary>
      <label for="token">Bearer token (kept in this browser's localStorage)</label>
      <input id="token" type="password" autocomplete="off" data-testid="token" placeholder="not needed on a local server">
    </details>
    <button type="submit" class="primary" id="submit" data-testid="submit">Generate</button>
    <div id="form-error" class="error" role="alert" data-testid="error" hidden></div>
  </form>
  <div style="display:grid;gap:1.2rem;align-content:start">
    <section aria-labelledby="status-title" data-testid="status-panel">
      <h2 id="status-title">Current job</h2>
      <div id="status-empty" class="muted">Nothing submitted yet.</div>
      <div id="status-box" aria-live="polite" hidden>
        <div>Job <code id="job-id" data-testid="job-id"></code></div>
        <div>Status: <span id="job-status" class="badge" data-testid="job-status"></span>
          <span id="provider-status" class="muted" data-testid="provider-status"></span></div>
        <div id="job-error" class="error" role="alert" data-testid="job-error" hidden></div>
        <img id="result-image" data-testid="result-image" alt="" hidden>
      </div>
    </section>
    <section aria-labelledby="gallery-title">
      <h2 id="gallery-title">Your images <button type="button" id="refresh" data-testid="refresh-gallery">Refresh</button></h2>
      <div id="gallery-error" class="error" role="alert" data-testid="gallery-error" hidden></div>
      <div id="gallery" class="gallery" data-testid="gallery"></div>
      <button type="button" id="more" data-testid="gallery-more" hidden>Load more</button>
    </section>
  </div>
</main>
`;

/** The page's behaviour. */
export const PLAYGROUND_JS = `
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const API = (params.get("api") || new URL(".", location.href).href).replace(/\\/+$/, "");
const TERMINAL = ["succeeded", "failed", "moderated"];
const SLOTS = ["input_image", "input_image_2", "input_image_3", "input_image_4"];
const TOKEN_KEY = "images.playground.token";
const state = { files: [], editJob: null, follow: 0, cursor: null };
$("api-base").textContent = API;
$("docs-link").href = "./docs" + location.search;
$("spec-link").href = API + "/openapi.json";

function store(action, value) {
  try { return action === "get" ? localStorage.getItem(TOKEN_KEY) || "" : value ? localStorage.setItem(TOKEN_KEY, value) : localStorage.removeItem(TOKEN_KEY); }
  catch { return ""; }
}
$("token").value = store("get");
$("token").addEventListener("input", () => store("set", $("token").value.trim()));

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value; else if (key.startsWith("data-") || key === "role") node.setAttribute(key, value); else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

/** An API error (or a network failure) in words: the message, then each detail. */
function showError(box, problem) {
  box.replaceChildren(el("strong", { text: problem.message, "data-testid": "error-message" }));
  const items = [];
  const details = problem.details;
  const list = Array.isArray(details) ? details : details && Array.isArray(details.fields) ? details.fields : null;
  for (const d of list || []) items.push(d && typeof d === "object" && "field" in d ? d.field + ": " + d.message : JSON.stringify(d));
  if (details && !Array.isArray(details) && typeof details === "object") {
    for (const [key, value] of Object.entries(details)) if (key !== "fields") items.push(key + ": " + (typeof value === "string" ? value : JSON.stringify(value)));
  }
  if (items.length) box.append(el("ul", {}, items.map((text) => el("li", { text, "data-testid": "error-detail" }))));
  if (problem.code) box.append(el("div", { className: "muted", text: "code: " + problem.code + (problem.status ? " · HTTP " + problem.status : "") }));
  box.hidden = false;
}
const hideError = (box) => { box.hidden = true; box.replaceChildren(); };

/** fetch + JSON; throws {message, code, status, details} for any failure, in words. */
async function api(path, init = {}) {
  const url = /^https?:/.test(path) ? path : API + path;
  const headers = new Headers(init.headers || {});
  const token = $("token").value.trim();
  if (token) headers.set("authorization", "Bearer " + token);
  let response;
  try { response = await fetch(url, { ...init, headers }); }
  catch (error) { throw { message: "Cannot reach the API at " + url + ": " + (error.message || error), code: "network_error" }; }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) {
    if (body && body.error && body.error.message) throw { ...body.error, status: response.status };
    throw { message: "HTTP " + response.status + " " + response.statusText + (text ? ": " + text.slice(0, 300) : ""), status: response.status };
  }
  if (body === null) throw { message: "The API answered " + response.status + " without a JSON body", status: response.status };
  return body;
}

// ---- form: model-specific options, files, editing
function applyModel() {
  const bagel = $("model").value === "flux-bagel-alpha";
  for (const node of document.querySelectorAll("[data-only]")) node.hidden = (node.dataset.only === "bagel") !== bagel;
}
$("model").addEventListener("change", applyModel);
applyModel();

function addFiles(list) {
  for (const file of list) if (file.type.startsWith("image/") || /\\.(png|jpe?g|webp|gif)$/i.test(file.name)) state.files.push(file);
  renderFiles();
}
const previews = new WeakMap();
function renderFiles() {
  const max = state.editJob ? 3 : 4;
  $("file-list").replaceChildren(...state.files.map((file, i) => {
    const slot = SLOTS[i + (state.editJob ? 1 : 0)] || "(too many)";
    const remove = el("button", { type: "button", text: "Remove", "data-testid": "remove-file" });
    remove.setAttribute("aria-label", "Remove " + file.name);
    remove.addEventListener("click", () => { state.files.splice(i, 1); renderFiles(); });
    if (!previews.has(file)) previews.set(file, URL.createObjectURL(file));
    const thumb = el("img", { alt: "", src: previews.get(file) });
    return el("li", { "data-testid": "file-item" }, [thumb, el("span", { text: file.name + " → " + slot + (i >= max ? " (over the limit)" : "") }), remove]);
  }));
}
$("files").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
const zone = $("dropzone");
zone.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("files").click(); } });
for (const type of ["dragenter", "dragover"]) zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => { event.preventDefault(); zone.classList.remove("over"); addFiles(event.dataTransfer.files); });

function setEditJob(job) {
  state.editJob = job;
  $("editing").hidden = !job;
  if (job) {
    state.files = []; // a new edit starts from the job's image; add references after choosing it
    $("editing-id").textContent = job.id;
    $("editing-prompt").textContent = job.prompt;
    $("editing-thumb").src = job.image ? job.image.url : "";
    $("prompt").focus();
    $("create-form").scrollIntoView({ behavior: "smooth" });
  }
  renderFiles();
}
$("clear-edit").addEventListener("click", () => setEditJob(null));

function buildForm() {
  const form = new FormData();
  const model = $("model").value;
  const bagel = model === "flux-bagel-alpha";
  form.append("prompt", $("prompt").value);
  form.append("model", model);
  const add = (name, value) => { if (value !== "" && value !== null && value !== undefined) form.append(name, value); };
  add("seed", $("seed").value.trim());
  add("output_format", $("output_format").value);
  add("safety_tolerance", $("safety_tolerance").value);
  if (bagel) { add("steps", $("steps").value.trim()); add("guidance", $("guidance").value.trim()); }
  else { add("aspect_ratio", $("aspect_ratio").value); if ($("prompt_upsampling").checked) form.append("prompt_upsampling", "true"); }
  if (state.editJob) form.append("input_job_id", state.editJob.id);
  state.files.forEach((file, i) => form.append(SLOTS[i + (state.editJob ? 1 : 0)] || "input_image_" + (i + 2), file, file.name));
  return form;
}

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  hideError($("form-error"));
  $("submit").disabled = true;
  $("submit").textContent = "Submitting…";
  try {
    const accepted = await api("/jobs", { method: "POST", body: buildForm() });
    showJob(accepted.job);
    follow(accepted.job);
    loadGallery();
  } catch (problem) {
    showError($("form-error"), problem);
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = "Generate";
  }
});

// ---- the current job, followed live
function showJob(job) {
  $("status-empty").hidden = true;
  $("status-box").hidden = false;
  $("job-id").textContent = job.id;
  $("job-status").textContent = job.status;
  $("job-status").dataset.status = job.status;
  const p = job.provider || {};
  $("provider-status").textContent = [p.status ? "BFL: " + p.status : "", p.cost != null ? p.cost + " credits" : ""].filter(Boolean).join(" · ");
  if (job.error) showError($("job-error"), job.error); else hideError($("job-error"));
  const image = $("result-image");
  image.hidden = !job.image;
  if (job.image && image.dataset.jobId !== job.id) { image.src = job.image.url; image.alt = job.prompt; image.dataset.jobId = job.id; }
}
$("result-image").addEventListener("error", () => showError($("job-error"), {
  message: "Cannot load the image of job " + $("result-image").dataset.jobId + " (its link may have expired: refresh the gallery)" }));
// Nothing fails silently: unexpected script errors are shown too.
addEventListener("error", (event) => showError($("form-error"), { message: "Unexpected error in the page: " + event.message }));
addEventListener("unhandledrejection", (event) => showError($("form-error"), { message: "Unexpected error in the page: " + ((event.reason && event.reason.message) || event.reason) }));

async function follow(job) {
  const ticket = ++state.follow;
  let failures = 0;
  while (!TERMINAL.includes(job.status) && ticket === state.follow) {
    await new Promise((resolve) => setTimeout(resolve, failures ? 2000 : 1000));
    if (ticket !== state.follow) return;
    try {
      job = await api("/jobs/" + encodeURIComponent(job.id));
      failures = 0;
      showJob(job);
    } catch (problem) {
      failures++;
      const fatal = problem.status && problem.status < 500 && problem.status !== 429;
      showError($("job-error"), { ...problem, message: "Following job " + job.id + ": " + problem.message + (fatal || failures >= 5 ? " (stopped)" : " (retrying)") });
      if (fatal || failures >= 5) return;
    }
  }
  if (ticket === state.follow) loadGallery();
}

// ---- gallery: your jobs, newest first
function galleryItem(job) {
  const thumb = job.image
    ? el("img", { className: "thumb", src: job.image.url, alt: job.prompt, loading: "lazy", "data-testid": "gallery-image" })
    : el("div", { className: "thumb", text: job.status });
  const badge = el("span", { className: "badge", text: job.status });
  badge.dataset.status = job.status;
  const children = [thumb, el("figcaption", {}, [badge, " ", el("span", { text: job.prompt })]),
    el("div", { className: "muted", text: job.model + " · " + new Date(job.created_at).toLocaleString() + (job.parent_job_id ? " · edit of " + job.parent_job_id.slice(0, 8) : "") })];
  if (job.error) children.push(el("div", { className: "muted", text: job.error.message }));
  if (job.status === "succeeded") {
    const edit = el("button", { type: "button", text: "Edit this", "data-testid": "edit-job" });
    edit.setAttribute("aria-label", "Edit this image: " + job.prompt);
    edit.addEventListener("click", () => setEditJob(job));
    children.push(edit);
  } else if (!TERMINAL.includes(job.status)) {
    const watch = el("button", { type: "button", text: "Follow", "data-testid": "follow-job" });
    watch.addEventListener("click", () => { showJob(job); follow(job); });
    children.push(watch);
  }
  return el("figure", { "data-testid": "gallery-item", "data-job-id": job.id, "data-status": job.status }, children);
}

async function loadGallery(more = false) {
  try {
    const page = await api("/jobs?limit=24" + (more && state.cursor ? "&cursor=" + encodeURIComponent(state.cursor) : ""));
    hideError($("gallery-error"));
    const items = page.data.map(galleryItem);
    if (more) $("gallery").append(...items); else $("gallery").replaceChildren(...items);
    if (!page.data.length && !more) $("gallery").replaceChildren(el("div", { className: "muted", text: "No jobs yet." }));
    state.cursor = page.next_cursor;
    $("more").hidden = !page.next_cursor;
  } catch (problem) {
    showError($("gallery-error"), { ...problem, message: "Cannot list your jobs: " + problem.message });
  }
}
$("refresh").addEventListener("click", () => loadGallery());
$("more").addEventListener("click", () => loadGallery(true));
loadGallery();
`;

export function playgroundHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>FLUX Kontext playground</title>
<style>${PLAYGROUND_CSS}</style>
</head>
<body>${PLAYGROUND_BODY}<script>${PLAYGROUND_JS}</script>
</body>
</html>
`;
}
