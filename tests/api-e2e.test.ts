// End to end through HTTP: the service on a random port, the BFL simulator as the provider.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { sniffImage } from "../shared/images/sniff-image.ts";
import { decodeBase64 } from "../shared/images/base64.ts";
import { openPglite } from "../shared/store/pglite-client.ts";
import { startBflSimulator } from "./support/bfl-simulator.ts";
import { startHarness, waitForJob } from "./support/harness.ts";
import { makeJpeg, makeLargePng, makePng, toBase64 } from "./support/test-images.ts";

const sha256 = async (bytes: Uint8Array) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))).join(",");

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

Deno.test("text-to-image: create → follow → download the stored image", async () => {
  const h = await startHarness();
  try {
    const created = await fetch(`${h.base}/jobs`, json({ prompt: "A small furry elephant", aspect_ratio: "16:9", seed: 7 }));
    assert.equal(created.status, 202);
    const accepted = await created.json();
    assert.equal(created.headers.get("location"), accepted.url);
    assert.match(accepted.url, /\/images\/jobs\/[0-9a-f-]{36}$/);
    assert.ok(["queued", "running"].includes(accepted.status));

    const job = await waitForJob(accepted.url);
    assert.equal(job.status, "succeeded");
    assert.equal((job.provider as Record<string, unknown>).cost, 4);
    assert.equal((job.provider as Record<string, unknown>).status, "Ready");
    const image = job.image as { url: string; content_type: string; bytes: number };
    assert.equal(image.content_type, "image/jpeg");
    // The client gets our stored copy, never BFL's short-lived sample URL.
    assert.ok(image.url.startsWith(h.base), image.url);
    assert.ok(!image.url.includes(h.sim.deliveryOrigin));

    const download = await fetch(image.url);
    assert.equal(download.status, 200);
    const bytes = new Uint8Array(await download.arrayBuffer());
    assert.equal(sniffImage(bytes)?.format, "jpeg");
    assert.equal(bytes.byteLength, image.bytes);

    // BFL received exactly the documented fields, defaults made explicit.
    assert.equal(h.sim.submissions.length, 1);
    assert.deepEqual(h.sim.submissions[0].body, {
      prompt: "A small furry elephant",
      aspect_ratio: "16:9",
      seed: 7,
      output_format: "jpeg",
      safety_tolerance: 2,
    });
    assert.equal(h.sim.counts.misroutedPolls, 0, "polls must use polling_url as returned");
  } finally {
    await h.close();
  }
});

Deno.test("the same routes answer under /functions/v1/images like a deployed project", async () => {
  const h = await startHarness();
  try {
    const base = h.base.replace("/images", "/functions/v1/images");
    const created = await fetch(`${base}/jobs`, json({ prompt: "lighthouse", output_format: "png" }));
    assert.equal(created.status, 202);
    const { url } = await created.json();
    assert.ok(url.startsWith(base), "links keep the prefix the caller used");
    const job = await waitForJob(url);
    assert.equal(job.status, "succeeded");
    const image = job.image as { url: string };
    assert.equal(sniffImage(new Uint8Array(await (await fetch(image.url)).arrayBuffer()))?.format, "png");
    const listed = await (await fetch(`${base}/jobs`)).json();
    assert.equal(listed.data.length, 1);
  } finally {
    await h.close();
  }
});

Deno.test("edit with an uploaded file: BFL receives exactly the uploaded bytes", async () => {
  const h = await startHarness();
  try {
    const upload = makePng(120, 80, 3);
    const form = new FormData();
    form.set("prompt", "Change the car color to red");
    form.set("input_image", new File([upload], "car.png", { type: "image/png" }));
    form.set("seed", "42");
    form.set("safety_tolerance", "1");
    const created = await fetch(`${h.base}/jobs`, { method: "POST", body: form });
    assert.equal(created.status, 202, await created.clone().text());
    const job = await waitForJob((await created.json()).url);
    assert.equal(job.status, "succeeded");

    const body = h.sim.submissions[0].body;
    assert.equal(body.seed, 42);
    assert.equal(body.safety_tolerance, 1);
    assert.deepEqual(decodeBase64(body.input_image as string), upload);
    assert.deepEqual(job.inputs, [{ slot: "input_image", kind: "upload", content_type: "image/png", bytes: upload.byteLength }]);
  } finally {
    await h.close();
  }
});

Deno.test("a large upload streamed without Content-Length reaches BFL byte for byte, and no spool file stays", async () => {
  const spoolDir = await Deno.makeTempDir({ prefix: "spool-e2e-" });
  const previous = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", spoolDir);
  const h = await startHarness();
  try {
    // 7 MiB + 2 bytes: several of the encoder's 3 MiB pieces, and not a multiple of 3.
    const upload = makeLargePng(7 * 1024 * 1024 + 2, 5);
    const form = new FormData();
    form.set("prompt", "Make it night");
    form.set("input_image", new File([upload], "big.png"));
    const encoded = new Request("http://x/", { method: "POST", body: form });
    const created = await fetch(`${h.base}/jobs`, {
      method: "POST",
      headers: { "content-type": encoded.headers.get("content-type")! },
      body: encoded.body, // a stream: sent chunked
    });
    assert.equal(created.status, 202, await created.clone().text());
    const job = await waitForJob((await created.json()).url);
    assert.equal(job.status, "succeeded");
    // Buffer.equals: node:assert's deepEqual walks 7 MB byte by byte for seconds.
    assert.ok(Buffer.from(decodeBase64(h.sim.submissions[0].body.input_image as string)!).equals(upload), "BFL got the bytes");
    const [input] = (await h.storedFiles()).filter((path) => path.startsWith("inputs/"));
    assert.ok(Buffer.from(await Deno.readFile(`${h.dataDir}/images/${input}`)).equals(upload), "storage has the bytes");
    const spooled = (await Array.fromAsync(Deno.readDir(spoolDir))).filter((e) => e.name.startsWith("image-upload-"));
    assert.deepEqual(spooled, [], "the spooled upload is deleted");
  } finally {
    await h.close();
    if (previous === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", previous);
    await Deno.remove(spoolDir, { recursive: true });
  }
});

Deno.test("multi-reference on kontext-max: files, base64 and an https URL in four slots", async () => {
  const h = await startHarness();
  try {
    const first = makePng(32, 32, 1);
    const second = makeJpeg(32, 32, 2);
    const third = makePng(16, 16, 3);
    const form = new FormData();
    form.set("model", "flux-kontext-max");
    form.set("prompt", "Put the person from image 1 in the scene of image 2, in the style of image 3");
    form.set("input_image", new File([first], "a.png"));
    form.set("input_image_2", new File([second], "b.jpg"));
    form.set("input_image_3", `data:image/png;base64,${toBase64(third)}`);
    form.set("input_image_4", "https://example.com/reference.png");
    const created = await fetch(`${h.base}/jobs`, { method: "POST", body: form });
    assert.equal(created.status, 202, await created.clone().text());
    const job = await waitForJob((await created.json()).url);
    assert.equal(job.status, "succeeded");
    assert.equal((job.provider as Record<string, unknown>).cost, 8);

    const submission = h.sim.submissions[0];
    assert.equal(submission.model, "flux-kontext-max");
    assert.deepEqual(decodeBase64(submission.body.input_image as string), first);
    assert.deepEqual(decodeBase64(submission.body.input_image_2 as string), second);
    assert.deepEqual(decodeBase64(submission.body.input_image_3 as string), third);
    assert.equal(submission.body.input_image_4, "https://example.com/reference.png");
  } finally {
    await h.close();
  }
});

Deno.test("flux-bagel-alpha: steps and guidance reach its endpoint, defaults when omitted", async () => {
  const h = await startHarness();
  try {
    const image = toBase64(makeJpeg(40, 40));
    const a = await fetch(`${h.base}/jobs`, json({ model: "flux-bagel-alpha", prompt: "Convert this to a Lego scene", input_image: image, steps: 30, guidance: 2.5 }));
    assert.equal(a.status, 202, await a.clone().text());
    const b = await fetch(`${h.base}/jobs`, json({ model: "flux-bagel-alpha", prompt: "Make it night", input_image: image }));
    assert.equal(b.status, 202);
    assert.equal((await waitForJob((await a.json()).url)).status, "succeeded");
    assert.equal((await waitForJob((await b.json()).url)).status, "succeeded");
    const [first, second] = h.sim.submissions;
    assert.equal(first.model, "flux-bagel-alpha");
    assert.equal(first.body.steps, 30);
    assert.equal(first.body.guidance, 2.5);
    assert.equal(second.body.steps, 50);
    assert.equal(second.body.guidance, 3.0);
  } finally {
    await h.close();
  }
});

Deno.test("both moderation outcomes end as moderated with the stage and BFL's reasons", async () => {
  const h = await startHarness();
  try {
    const before = await (await fetch(`${h.base}/jobs`, json({ prompt: "[sim:request-moderated] x" }))).json();
    const after = await (await fetch(`${h.base}/jobs`, json({ prompt: "[sim:content-moderated] y" }))).json();
    const a = await waitForJob(before.url);
    const b = await waitForJob(after.url);
    assert.equal(a.status, "moderated");
    assert.equal((a.error as Record<string, unknown>).code, "request_moderated");
    assert.ok((a.error as Record<string, unknown>).details, "BFL's moderation details are passed on");
    assert.equal(b.status, "moderated");
    assert.equal((b.error as Record<string, unknown>).code, "content_moderated");
    assert.equal(a.image, null);
    assert.deepEqual(await h.storedFiles(), [], "no image is stored for a moderated job");
  } finally {
    await h.close();
  }
});

Deno.test("provider 402 fails the job with a clear code; 422 passes BFL's field errors to the caller", async () => {
  const h = await startHarness();
  try {
    h.sim.faults.submitStatus = { status: 402 };
    const poor = await fetch(`${h.base}/jobs`, json({ prompt: "x" }));
    assert.equal(poor.status, 202);
    const poorJob = (await poor.json()).job;
    assert.equal(poorJob.status, "failed");
    assert.equal(poorJob.error.code, "provider_insufficient_credits");

    h.sim.faults.submitStatus = { status: 422 };
    const rejected = await fetch(`${h.base}/jobs`, json({ prompt: "y" }));
    assert.equal(rejected.status, 422);
    const body = await rejected.json();
    assert.equal(body.error.code, "provider_rejected_input");
    assert.ok(Array.isArray(body.error.details.fields) && body.error.details.fields.length > 0);
    assert.ok(body.error.details.fields.every((f: { field: string }) => typeof f.field === "string"));
    assert.equal(h.sim.submissions.length, 0);
  } finally {
    await h.close();
  }
});

Deno.test("provider 429 leaves the job queued and it is submitted once a slot frees", async () => {
  const h = await startHarness({ sweep: true });
  try {
    h.sim.faults.submitStatus = { status: 429, times: 2 };
    const created = await fetch(`${h.base}/jobs`, json({ prompt: "patience" }));
    assert.equal(created.status, 202);
    const accepted = await created.json();
    assert.equal(accepted.status, "queued", "a 429 never fails the job");
    const job = await waitForJob(accepted.url);
    assert.equal(job.status, "succeeded");
    assert.equal(h.sim.counts.rejected["429"], 2);
    assert.equal(h.sim.submissions.length, 1);
  } finally {
    await h.close();
  }
});

Deno.test("a 5xx or a dropped connection on submit is never resubmitted", async () => {
  const h = await startHarness({ sweep: true });
  try {
    h.sim.faults.submitStatus = { status: 500 };
    const a = await (await fetch(`${h.base}/jobs`, json({ prompt: "a" }))).json();
    h.sim.faults.submitDropConnection = { afterAccept: true };
    const b = await (await fetch(`${h.base}/jobs`, json({ prompt: "b" }))).json();
    assert.equal(a.job.status, "failed");
    assert.equal(a.job.error.code, "provider_outcome_unknown");
    assert.equal(b.job.status, "failed");
    assert.equal(b.job.error.code, "provider_outcome_unknown");
    await new Promise((resolve) => setTimeout(resolve, 400));
    // The dropped one was billed at BFL; it must not have been sent a second time.
    assert.equal(h.sim.counts.accepted, 1);
    assert.equal(h.sim.counts.submitRequests, 2);
  } finally {
    await h.close();
  }
});

Deno.test("an expired sample URL fails the job as result_expired, without an image", async () => {
  const h = await startHarness({ simulator: { readyAfterMs: 50, sampleTtlMs: 1 } });
  try {
    const accepted = await (await fetch(`${h.base}/jobs`, json({ prompt: "too late" }))).json();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const job = await waitForJob(accepted.url);
    assert.equal(job.status, "failed");
    assert.equal((job.error as Record<string, unknown>).code, "result_expired");
    assert.deepEqual(await h.storedFiles(), []);
  } finally {
    await h.close();
  }
});

Deno.test("a sample URL that fails once is retried and the image is still stored", async () => {
  const h = await startHarness();
  try {
    h.sim.faults.sampleFailOnce = true;
    const accepted = await (await fetch(`${h.base}/jobs`, json({ prompt: "second time lucky" }))).json();
    const job = await waitForJob(accepted.url);
    assert.equal(job.status, "succeeded");
    assert.equal(h.sim.counts.downloads, 2);
  } finally {
    await h.close();
  }
});

Deno.test("the background loop stores images even when no client polls", async () => {
  const h = await startHarness({ sweep: true });
  try {
    const accepted = await (await fetch(`${h.base}/jobs`, json({ prompt: "unwatched" }))).json();
    const deadline = Date.now() + 5000;
    while ((await h.services.store.get(accepted.id))?.status !== "succeeded" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const files = await h.storedFiles();
    assert.equal(files.length, 1);
    assert.match(files[0], new RegExp(`^results/[0-9a-f-]+/${accepted.id}\\.jpeg$`));
    assert.equal(h.sim.counts.downloads, 1);
  } finally {
    await h.close();
  }
});

Deno.test("a server restarted mid-job finishes the job from the database", async () => {
  const sim = await startBflSimulator({ readyAfterMs: 300 });
  const dataDir = await Deno.makeTempDir({ prefix: "images-restart-" });
  const pgliteDir = `${dataDir}/pglite`;
  try {
    const first = await startHarness({ sim, dataDir, sql: await openPglite(pgliteDir) });
    const accepted = await (await fetch(`${first.base}/jobs`, json({ prompt: "survive a restart" }))).json();
    assert.equal(accepted.status, "running");
    await first.close();
    await first.services.close();

    // A new process: new PGlite handle on the same files, new HTTP server, background loop on.
    const second = await startHarness({ sim, dataDir, sql: await openPglite(pgliteDir), sweep: true });
    try {
      const deadline = Date.now() + 5000;
      let row = await second.services.store.get(accepted.id);
      while (row?.status !== "succeeded" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        row = await second.services.store.get(accepted.id);
      }
      assert.equal(row?.status, "succeeded");
      const job = await (await fetch(`${second.base}/jobs/${accepted.id}`)).json();
      const image = await fetch(job.image.url);
      assert.equal(image.status, 200);
      assert.equal(sniffImage(new Uint8Array(await image.arrayBuffer()))?.format, "jpeg");
      assert.equal(sim.submissions.length, 1, "the job was not submitted again");
    } finally {
      await second.close();
      await second.services.close();
    }
  } finally {
    await sim.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a 20 MB upload is accepted, base64-encoded and submitted unchanged", async () => {
  const h = await startHarness();
  try {
    const big = makeLargePng(20 * 1024 * 1024);
    const form = new FormData();
    form.set("prompt", "Keep everything, change the sky");
    form.set("input_image", new File([big], "big.png", { type: "image/png" }));
    const created = await fetch(`${h.base}/jobs`, { method: "POST", body: form });
    assert.equal(created.status, 202, await created.clone().text());
    const received = decodeBase64(h.sim.submissions[0].body.input_image as string)!;
    assert.equal(received.byteLength, big.byteLength);
    assert.equal(await sha256(received), await sha256(big));
  } finally {
    await h.close();
  }
});

Deno.test("list: the caller's jobs, newest first, with cursor pagination", async () => {
  const h = await startHarness();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await (await fetch(`${h.base}/jobs`, json({ prompt: `job ${i}` }))).json()).id);
    }
    const page1 = await (await fetch(`${h.base}/jobs?limit=2`)).json();
    const page2 = await (await fetch(`${h.base}/jobs?limit=2&cursor=${page1.next_cursor}`)).json();
    const page3 = await (await fetch(`${h.base}/jobs?limit=2&cursor=${page2.next_cursor}`)).json();
    const seen = [...page1.data, ...page2.data, ...page3.data].map((job: { id: string }) => job.id);
    assert.deepEqual(seen, [...ids].reverse());
    assert.equal(page3.next_cursor, null);
    const bad = await fetch(`${h.base}/jobs?cursor=nonsense`);
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.details[0].field, "cursor");
  } finally {
    await h.close();
  }
});

Deno.test("without BFL_API_KEY creation answers 503 naming it; health and reads still work", async () => {
  const h = await startHarness({ env: { BFL_API_KEY: "" } });
  try {
    const created = await fetch(`${h.base}/jobs`, json({ prompt: "x" }));
    assert.equal(created.status, 503);
    assert.match((await created.json()).error.message, /BFL_API_KEY/);
    const health = await (await fetch(`${h.base}/health`)).json();
    assert.equal(health.status, "ok");
    assert.equal(health.provider_configured, false);
    const list = await fetch(`${h.base}/jobs`);
    assert.equal(list.status, 200);
    assert.deepEqual((await list.json()).data, []);
  } finally {
    await h.close();
  }
});

Deno.test("the OpenAPI document is generated from the request schema", async () => {
  const h = await startHarness();
  try {
    const doc = await (await fetch(`${h.base}/openapi.json`)).json();
    assert.equal(doc.openapi, "3.1.0");
    const create = doc.paths["/images/jobs"].post;
    assert.ok(create.requestBody.content["multipart/form-data"]);
    const schema = doc.components.schemas.CreateJobRequest;
    assert.deepEqual(schema.properties.model.enum, ["flux-kontext-pro", "flux-kontext-max", "flux-bagel-alpha"]);
    assert.equal(schema.properties.steps.maximum, 150);
    assert.equal(schema.properties.guidance.minimum, 0.1);
    assert.equal(schema.additionalProperties, false);
    assert.ok(doc.paths["/images/jobs/{id}"].get);
  } finally {
    await h.close();
  }
});
