/**
 * Child process of the large-input figure: the service's 20 MB path replayed step by step in one
 * process, keeping alive what the service keeps alive, with the process's peak RSS (VmHWM, reset
 * through /proc/self/clear_refs after a full GC) read after each step — so the peak of figure 2
 * can be pinned on the steps of shared/ that cause it. Prints one JSON line.
 *
 *   SIM_URL=... SIM_KEY=... [MODE=lean] deno run --v8-flags=--expose-gc -A bench/lib/upload-memory.ts
 *
 * MODE=lean replays a what-if instead (not the service's code): the upload streamed to the file,
 * no read-back, base64 encoded in 3 MiB chunks straight into the Blob's parts.
 *
 * The steps are the ones of shared/api/read-create-request.ts (formData, file.arrayBuffer),
 * shared/jobs/job-service.ts (storage.put), shared/jobs/submit-body.ts (storage.get,
 * encodeBase64, the Blob) and shared/bfl/bfl-client.ts (fetch with the Blob as body).
 *
 * @module
 */
import { encodeBase64 } from "../../shared/images/base64.ts";
import { LocalImageStorage } from "../../shared/storage/local-image-storage.ts";
import { UrlSigner } from "../../shared/storage/url-signer.ts";
import { makeLargePng } from "../../tests/support/test-images.ts";

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const IMAGE_BYTES = 20 * 1024 * 1024;

async function memory(): Promise<{ rss: number; hwm: number }> {
  const status = await Deno.readTextFile("/proc/self/status");
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s*(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

const image = makeLargePng(IMAGE_BYTES);
const form = new FormData();
form.set("prompt", "bench: memory replay");
form.set("input_image", new File([image], "big.png", { type: "image/png" }));
const encoded = new Response(form);
const contentType = encoded.headers.get("content-type")!;
const multipartBytes = new Uint8Array(await encoded.arrayBuffer());
const dir = await Deno.makeTempDir({ prefix: "bench-upload-memory-" });
const storage = new LocalImageStorage(dir, new UrlSigner("bench"));

gc();
await Deno.writeTextFile("/proc/self/clear_refs", "5");
const base = (await memory()).rss;
const steps: { step: string; peakAboveStart: number; rssAboveStart: number }[] = [];
async function mark(step: string) {
  const now = await memory();
  steps.push({ step, peakAboveStart: now.hwm - base, rssAboveStart: now.rss - base });
}

// The request as the server receives it (its body bytes arrive from the socket).
const request = new Request("http://127.0.0.1/images/jobs", {
  method: "POST",
  headers: { "content-type": contentType },
  body: multipartBytes,
});
const simUrl = Deno.env.get("SIM_URL");
const submit = async (blob: Blob) => {
  if (!simUrl) return;
  const response = await fetch(`${simUrl}/v1/flux-kontext-pro`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-key": Deno.env.get("SIM_KEY") ?? "" },
    body: blob,
  });
  await response.arrayBuffer();
  await mark("fetch(submit, { body: blob }) (bfl-client.ts)");
};
const kept: unknown[] = [request];
const head = '{"prompt":"bench","output_format":"jpeg","safety_tolerance":2,"input_image":"';

if (Deno.env.get("MODE") === "lean") {
  // What-if, not the service's code: the same work without the copies.
  const received = await request.formData();
  await mark("request.formData() (as the service)");
  const file = received.get("input_image") as File;
  const out = await Deno.open(`${dir}/input.png`, { write: true, create: true });
  await file.stream().pipeTo(out.writable);
  await mark("file.stream() piped to the storage file (no arrayBuffer copy, no read-back)");
  // Each chunk's string becomes a small Blob at once; Blobs of Blobs share their parts.
  let blob = new Blob([head]);
  const input = await Deno.open(`${dir}/input.png`, { read: true });
  const chunk = new Uint8Array(3 * 1024 * 1024); // a multiple of 3: chunk encodings concatenate
  while (true) {
    let filled = 0;
    while (filled < chunk.length) {
      const n = await input.read(chunk.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled === 0) break;
    blob = new Blob([blob, encodeBase64(chunk.subarray(0, filled))]);
    if (filled < chunk.length) break;
  }
  input.close();
  blob = new Blob([blob, '"}'], { type: "application/json" });
  await mark("base64 in 3 MiB chunks read from the file, each appended to the Blob at once");
  await submit(blob);
  kept.push(received, file, blob);
} else {
  const received = await request.formData();
  await mark("request.formData() (read-create-request.ts readBody)");
  const file = received.get("input_image") as File;
  const bytes = new Uint8Array(await file.arrayBuffer());
  await mark("file.arrayBuffer() copy (read-create-request.ts resolveImage)");
  await storage.put("inputs/u/j/input_image.png", bytes, "image/png");
  await mark("storage.put (job-service.ts create → local file)");
  const stored = await storage.get("inputs/u/j/input_image.png");
  await mark("storage.get, the file read back (submit-body.ts buildSubmitBody)");
  const base64 = encodeBase64(stored!.bytes);
  await mark("encodeBase64 → a 26.7 MB string (node:buffer)");
  const blob = new Blob([head, base64, '"}'], { type: "application/json" });
  await mark("new Blob(parts) (submit-body.ts)");
  await submit(blob);
  // Keep everything reachable until the end, as the service's request handler does.
  kept.push(received, file, bytes, stored, base64, blob);
}
await Deno.remove(dir, { recursive: true });
console.log(`MEMORY_JSON ${JSON.stringify({ imageBytes: IMAGE_BYTES, steps, kept: kept.length })}`);
