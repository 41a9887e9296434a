/**
 * `GET /images/docs`: an interactive API reference, built in the browser from `./openapi.json`
 * (the document generated from the zod schemas, so the reference cannot drift from the code).
 * Every operation with its parameters, request body fields (following $ref into
 * components.schemas), responses, and a "Try it" form that sends the request and shows the answer.
 * Self-contained: inline CSS and vanilla JS, nothing from a CDN. Like the playground it finds the
 * API next to its own URL, or at `?api=<base>`.
 *
 * @module
 */
import type { Hono } from "hono";
import { SELF_CONTAINED_PAGE_HEADERS } from "../playground/register-playground.ts";

/** Page styles. */
export const DOCS_CSS = `
:root { color-scheme: light dark; --fg: #1d1d1f; --muted: #666; --bg: #f6f6f7; --card: #fff; --line: #d8d8dc; --accent: #2f5bea;
  --bad: #b3261e; --ok: #1b7f3b; font: 15px/1.45 system-ui, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --muted: #aaa; --bg: #161618; --card: #222226; --line: #3a3a40; } }
* { box-sizing: border-box; } body { margin: 0; background: var(--bg); color: var(--fg); }
header { padding: 1rem 1.5rem; border-bottom: 1px solid var(--line); } header h1 { margin: 0 0 .3rem; font-size: 1.3rem; }
.layout { display: grid; grid-template-columns: 260px 1fr; gap: 1.5rem; padding: 1.5rem; }
@media (max-width: 850px) { .layout { grid-template-columns: 1fr; } }
nav ul { list-style: none; padding: 0; margin: 0; position: sticky; top: 1rem; } nav li { margin: .3rem 0; }
nav a { color: inherit; text-decoration: none; } nav a:hover { text-decoration: underline; }
.op { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; margin-bottom: 1.2rem; }
.op h2 { font-size: 1.05rem; margin: 0; display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; }
.method { font: 700 .8rem monospace; padding: .15rem .5rem; border-radius: 5px; color: #fff; background: var(--accent); }
.method.post { background: var(--ok); } .path { font-family: monospace; font-size: 1rem; }
h3 { font-size: .9rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; } th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td:first-child code { white-space: nowrap; } td code, .mono { font-family: monospace; font-size: .85rem; overflow-wrap: anywhere; }
.req { color: var(--bad); font-size: .75rem; margin-left: .3rem; } .muted { color: var(--muted); }
details.try { margin-top: 1rem; border-top: 1px solid var(--line); padding-top: .6rem; } details.try summary { cursor: pointer; font-weight: 600; color: var(--accent); }
label { display: block; font-weight: 600; margin: .5rem 0 .2rem; font-size: .9rem; }
input[type=text], input[type=password], textarea { width: 100%; padding: .4rem .5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: inherit; font: inherit; }
textarea { font-family: monospace; min-height: 9rem; font-size: .85rem; }
button { font: inherit; cursor: pointer; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; padding: .4rem 1rem; margin-top: .6rem; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .6rem; overflow: auto; max-height: 24rem; font-size: .8rem; }
.status { font-weight: 700; margin-top: .6rem; } .status.ok { color: var(--ok); } .status.bad { color: var(--bad); }
.error { border: 1px solid var(--bad); color: var(--bad); border-radius: 8px; padding: .6rem .8rem; margin: 1rem 1.5rem; }
.inline { display: inline-flex; gap: .3rem; align-items: center; font-weight: normal; margin-right: 1rem; }
`;

/** The page's behaviour: fetch the document, render it, wire the "Try it" forms. */
export const DOCS_JS = `
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const API = (params.get("api") || new URL(".", location.href).href).replace(/\\/+$/, "");
const ROOT = API.replace(/\\/images$/, "");
const TOKEN_KEY = "images.playground.token";
const METHODS = ["get", "post", "put", "patch", "delete"];
let doc = { components: { schemas: {} } };
$("spec-link").href = API + "/openapi.json";
$("playground-link").href = "./playground" + location.search;
try { $("token").value = localStorage.getItem(TOKEN_KEY) || ""; } catch { /* storage unavailable */ }
$("token").addEventListener("input", () => { try { localStorage.setItem(TOKEN_KEY, $("token").value.trim()); } catch { /* ignore */ } });

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value; else if (key.startsWith("data-") || key.startsWith("aria-") || key === "for") node.setAttribute(key, value); else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
const refName = (schema) => schema && schema.$ref ? schema.$ref.split("/").pop() : null;
function deref(schema, seen = 0) {
  if (!schema || !schema.$ref || seen > 20) return schema || {};
  return deref(doc.components.schemas[refName(schema)], seen + 1);
}
function typeOf(schema) {
  const s = deref(schema);
  if (s.enum) return [].concat(s.type || []).join(" | ") + " enum";
  const types = [].concat(s.type || (s.properties ? "object" : s.anyOf ? s.anyOf.map((x) => typeOf(x)) : "any"));
  return types.map((t) => t === "array" ? "array of " + typeOf(s.items) : t).join(" | ") + (s.format ? " (" + s.format + ")" : "");
}
function rules(schema) {
  const s = deref(schema);
  const out = [];
  if (s.enum) out.push("one of " + s.enum.map((v) => JSON.stringify(v)).join(", "));
  for (const [key, label] of [["minimum", "min"], ["maximum", "max"], ["minLength", "min length"], ["maxLength", "max length"], ["pattern", "pattern"], ["default", "default"], ["example", "example"]]) {
    if (s[key] !== undefined) out.push(label + " " + (typeof s[key] === "string" && key !== "pattern" ? JSON.stringify(s[key]) : s[key]));
  }
  return out.join("; ");
}
/** Rows for every field of an object schema, nested objects and arrays of objects flattened with dotted names. */
function fieldRows(schema, prefix = "", depth = 0) {
  const s = deref(schema);
  const rows = [];
  const required = new Set(s.required || []);
  for (const [name, property] of Object.entries(s.properties || {})) {
    const p = deref(property);
    const full = prefix + name;
    rows.push(el("tr", { "data-testid": "field", "data-field": full }, [
      el("td", {}, [el("code", { text: full }), required.has(name) ? el("span", { className: "req", text: "required" }) : null]),
      el("td", { className: "mono", text: typeOf(property) }),
      el("td", {}, [p.description || property.description || "", rules(property) ? el("div", { className: "muted", text: rules(property) }) : null]),
    ]));
    if (depth < 4 && p.properties) rows.push(...fieldRows(p, full + ".", depth + 1));
    if (depth < 4 && p.items && deref(p.items).properties) rows.push(...fieldRows(p.items, full + "[].", depth + 1));
  }
  return rows;
}
function fieldsTable(schema) {
  const rows = fieldRows(schema);
  if (!rows.length) return el("div", { className: "muted", text: "Type: " + typeOf(schema) });
  return el("table", {}, [el("thead", {}, [el("tr", {}, ["Field", "Type", "Description"].map((t) => el("th", { text: t })))]), el("tbody", {}, rows)]);
}
/** A request body example from the schema: required fields and those with defaults. */
function example(schema, name = "", depth = 0) {
  const s = deref(schema);
  if (s.example !== undefined) return s.example;
  if (s.default !== undefined) return s.default;
  if (s.enum) return s.enum[0];
  const type = [].concat(s.type || (s.properties ? "object" : "string")).find((t) => t !== "null");
  if (type === "object") {
    const out = {};
    const required = s.required || [];
    for (const [key, property] of Object.entries(s.properties || {})) {
      if (depth < 4 && (required.includes(key) || deref(property).default !== undefined)) out[key] = example(property, key, depth + 1);
    }
    return out;
  }
  if (type === "array") return depth < 4 ? [example(s.items, name, depth + 1)] : [];
  if (type === "integer" || type === "number") return s.minimum ?? 0;
  if (type === "boolean") return false;
  if (s.format === "uuid") return "00000000-0000-4000-8000-000000000000";
  return /prompt/i.test(name) ? "A watercolor fox in the snow" : "string";
}

function showProblem(box, message, details) {
  box.replaceChildren(el("strong", { text: message }), ...(details || []).map((d) => el("div", { text: d })));
  box.hidden = false;
}

function tryForm(path, method, op) {
  const form = el("form", { "data-testid": "try-form" });
  const inputs = {};
  for (const p of op.parameters || []) {
    const id = "p-" + method + path + "-" + p.in + "-" + p.name;
    inputs[p.in + ":" + p.name] = el("input", { type: "text", id, name: p.name, placeholder: p.schema && p.schema.default !== undefined ? "default " + p.schema.default : p.in === "path" ? "required" : "optional", "data-testid": "try-param-" + p.name });
    form.append(el("label", { for: id, text: p.name + " (" + p.in + (p.required ? ", required" : "") + ")" }), inputs[p.in + ":" + p.name]);
  }
  const content = (op.requestBody && op.requestBody.content) || {};
  const bodySchema = (content["application/json"] || content["multipart/form-data"] || {}).schema;
  let body, files = [], mode = "json";
  if (bodySchema) {
    const id = "b-" + method + path;
    body = el("textarea", { id, spellcheck: false, "data-testid": "try-body", value: JSON.stringify(example(bodySchema), null, 2) });
    form.append(el("label", { for: id, text: "Request body (JSON)" }), body);
    if (content["multipart/form-data"]) {
      const choice = (value, label) => {
        const radio = el("input", { type: "radio", name: "mode-" + id, value, checked: value === "json", "data-testid": "try-mode-" + value });
        radio.addEventListener("change", () => { mode = value; fileBox.hidden = value !== "multipart"; });
        return el("label", { className: "inline" }, [radio, label]);
      };
      const fileBox = el("div", { hidden: true, "data-testid": "try-files" }, [el("div", { className: "muted", text: "The JSON fields above are sent as form fields; add files:" })]);
      for (const name of Object.keys(deref(content["multipart/form-data"].schema).properties || {}).filter((n) => /^input_image(_\\d)?$/.test(n))) {
        const input = el("input", { type: "file", id: id + "-" + name, name, accept: "image/*", "data-testid": "try-file-" + name });
        files.push(input);
        fileBox.append(el("label", { for: input.id, text: name }), input);
      }
      form.append(el("div", {}, [el("span", { className: "muted", text: "Send as: " }), choice("json", "application/json"), choice("multipart", "multipart/form-data (with files)")]), fileBox);
    }
  }
  const send = el("button", { type: "submit", text: "Send " + method.toUpperCase() + " " + path, "data-testid": "try-send" });
  const status = el("div", { className: "status", "data-testid": "try-status", "aria-live": "polite" });
  const output = el("pre", { "data-testid": "try-response", hidden: true });
  form.append(send, status, output);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let url = ROOT + path;
    const query = new URLSearchParams();
    const headers = new Headers();
    for (const p of op.parameters || []) {
      const value = inputs[p.in + ":" + p.name].value.trim();
      if (p.in === "path") {
        if (!value) { status.className = "status bad"; status.textContent = "Fill in " + p.name + " first."; return; }
        url = url.replace("{" + p.name + "}", encodeURIComponent(value));
      } else if (value && p.in === "query") query.set(p.name, value);
      else if (value && p.in === "header") headers.set(p.name, value);
    }
    if (String(query)) url += "?" + query;
    const token = $("token").value.trim();
    if (token) headers.set("authorization", "Bearer " + token);
    const init = { method: method.toUpperCase(), headers };
    if (body && mode === "multipart") {
      let fields;
      try { fields = JSON.parse(body.value || "{}"); } catch (error) { status.className = "status bad"; status.textContent = "The body is not valid JSON: " + error.message; return; }
      const formData = new FormData();
      for (const [key, value] of Object.entries(fields)) formData.append(key, typeof value === "string" ? value : JSON.stringify(value));
      for (const input of files) if (input.files[0]) formData.append(input.name, input.files[0], input.files[0].name);
      init.body = formData;
    } else if (body) { headers.set("content-type", "application/json"); init.body = body.value; }
    status.className = "status"; status.textContent = "Sending…"; output.hidden = true;
    const started = performance.now();
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
      status.className = "status " + (response.ok ? "ok" : "bad");
      status.textContent = response.status + " " + response.statusText + " · " + Math.round(performance.now() - started) + " ms · " + init.method + " " + url;
      output.textContent = shown || "(empty body)";
      output.hidden = false;
    } catch (error) {
      status.className = "status bad";
      status.textContent = "Cannot reach " + url + ": " + (error.message || error);
    }
  });
  return el("details", { className: "try" }, [el("summary", { text: "Try it", "data-testid": "try-it" }), form]);
}

function operation(path, method, op) {
  const id = "op-" + method + "-" + path.replace(/[^a-z0-9]+/gi, "-");
  const section = el("section", { className: "op", id, "data-testid": "operation", "data-method": method.toUpperCase(), "data-path": path });
  section.append(el("h2", {}, [el("span", { className: "method " + method, text: method.toUpperCase() }), el("span", { className: "path", text: path }), el("span", { text: op.summary || "" })]));
  if (op.description) section.append(el("p", { text: op.description }));
  if (op.security && op.security.length) {
    const names = op.security.flatMap((s) => Object.keys(s));
    const schemes = names.map((n) => { const s = (doc.components.securitySchemes || {})[n] || {}; return n + " (" + [s.type, s.scheme].filter(Boolean).join(" ") + ")" + (s.description ? ": " + s.description : ""); });
    section.append(el("p", { className: "muted", text: "Authentication: " + schemes.join("; ") }));
  }
  if ((op.parameters || []).length) {
    section.append(el("h3", { text: "Parameters" }), el("table", {}, [
      el("thead", {}, [el("tr", {}, ["Name", "In", "Type", "Description"].map((t) => el("th", { text: t })))]),
      el("tbody", {}, op.parameters.map((p) => el("tr", { "data-testid": "parameter" }, [
        el("td", {}, [el("code", { text: p.name }), p.required ? el("span", { className: "req", text: "required" }) : null]),
        el("td", { text: p.in }), el("td", { className: "mono", text: typeOf(p.schema) }),
        el("td", {}, [p.description || (p.schema && p.schema.description) || "", rules(p.schema) ? el("div", { className: "muted", text: rules(p.schema) }) : null]),
      ]))),
    ]));
  }
  if (op.requestBody) {
    section.append(el("h3", { text: "Request body" + (op.requestBody.required ? " (required)" : "") }));
    const groups = new Map();
    for (const [type, media] of Object.entries(op.requestBody.content || {})) {
      const key = refName(media.schema) || JSON.stringify(media.schema);
      if (!groups.has(key)) groups.set(key, { types: [], schema: media.schema });
      groups.get(key).types.push(type);
    }
    for (const { types, schema } of groups.values()) {
      section.append(el("p", { className: "muted", text: types.join(", ") + (refName(schema) ? " · schema " + refName(schema) : "") }), fieldsTable(schema));
    }
  }
  section.append(el("h3", { text: "Responses" }));
  const responses = el("table", {}, [el("thead", {}, [el("tr", {}, ["Code", "Description", "Body"].map((t) => el("th", { text: t })))])]);
  const tbody = el("tbody");
  for (const [code, response] of Object.entries(op.responses || {})) {
    const media = response.content && (response.content["application/json"] || Object.values(response.content)[0]);
    const cell = el("td");
    if (media && media.schema) {
      cell.append(el("details", {}, [el("summary", { className: "mono", text: refName(media.schema) || typeOf(media.schema) }), fieldsTable(media.schema)]));
    }
    tbody.append(el("tr", { "data-testid": "response", "data-code": code }, [el("td", {}, [el("code", { text: code })]), el("td", { text: response.description || "" }), cell]));
  }
  responses.append(tbody);
  section.append(responses, tryForm(path, method, op));
  return section;
}

async function load() {
  const url = API + "/openapi.json";
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error("HTTP " + response.status + " " + response.statusText);
    doc = await response.json();
    doc.components = doc.components || {};
    doc.components.schemas = doc.components.schemas || {};
  } catch (error) {
    showProblem($("load-error"), "Cannot load the API description from " + url + ": " + (error.message || error), ["Open this page from the server, or name the API with ?api=https://…/images."]);
    return;
  }
  document.title = (doc.info && doc.info.title || "API") + " · reference";
  $("title").textContent = doc.info && doc.info.title || "API reference";
  $("description").textContent = [doc.info && doc.info.description, doc.info && doc.info.version ? "Version " + doc.info.version + "." : ""].filter(Boolean).join(" ");
  const toc = $("toc");
  const ops = $("operations");
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const section = operation(path, method, item[method]);
      ops.append(section);
      toc.append(el("li", {}, [el("a", { href: "#" + section.id, text: method.toUpperCase() + " " + path })]));
    }
  }
}
load();
`;

export function docsHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>API reference</title>
<style>${DOCS_CSS}</style>
</head>
<body>
<header>
  <h1 id="title">API reference</h1>
  <div id="description" class="muted">Loading ./openapi.json …</div>
  <div class="muted"><a id="spec-link" href="./openapi.json">openapi.json</a> · <a id="playground-link" href="./playground">playground</a></div>
  <label for="token">Bearer token for "Try it" (kept in this browser's localStorage; not needed on a local server)</label>
  <input id="token" type="password" autocomplete="off" data-testid="token" style="max-width:32rem">
</header>
<div id="load-error" class="error" role="alert" data-testid="load-error" hidden></div>
<div class="layout">
  <nav aria-label="Operations"><ul id="toc" data-testid="toc"></ul></nav>
  <main id="operations" data-testid="operations"></main>
</div>
<script>${DOCS_JS}</script>
</body>
</html>
`;
}

// deno-lint-ignore no-explicit-any
export function registerDocsRoute(app: Hono<any>): void {
  const html = docsHtml();
  app.get("/images/docs", (c) => c.body(html, 200, SELF_CONTAINED_PAGE_HEADERS));
}
