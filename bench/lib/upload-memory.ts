/**
 * Child process of the large-input figure: the service's 20 MB path replayed step by step in one
 * process, keeping alive what the service keeps alive, with the process's peak RSS (VmHWM, reset
 * through /proc/self/clear_refs after a full GC) read after each step — so the peak of figure 2
 * can be pinned on the steps of shared/ that cause it. Prints one JSON line.
 *
 *   SIM_URL=... SIM_KEY=... deno run --v8-flags=--expose-gc -A bench/lib/upload-memory.ts
 *
 * The steps call the service's own functions: readCreateRequest (shared/api/read-create-request.ts:
 * streaming multipart parse, spool file), storage.put (shared/jobs/job-service.ts),
 * buildSubmitBody (shared/jobs/submit-body.ts) and a fetch with the Blob as body
 * (shared/bfl/bfl-client.ts).
 *
 * @module
 */
import { disposeImages, readCreateRequest } from "../../shared/api/read-create-request.ts";
import type { JobRow } from "../../shared/jobs/job-row.ts";
import { buildSubmitBody } from "../../shared/jobs/submit-body.ts";
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

let offset = 0;
// The request as the server receives it (its body bytes arrive from the socket).
const request = new Request("http://127.0.0.1/images/jobs", {
  method: "POST",
  headers: { "content-type": contentType },
  // As from a socket: the body arrives in 64 KiB reads (views here: nothing is copied).
  body: new ReadableStream<Uint8Array>({
    start() {
      offset = 0;
    },
    pull(controller) {
      if (offset >= multipartBytes.byteLength) return controller.close();
      controller.enqueue(multipartBytes.subarray(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    },
  }),
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
// The service's own functions, in the order a create request runs them.
const read = await readCreateRequest(request);
await mark("readCreateRequest: the multipart body parsed as a stream, the file spooled to a temp file");
const input = read.images.input_image;
if (input?.kind !== "bytes") throw new Error("the replay's upload was not read as bytes");
const path = "inputs/u/j/input_image.png";
await storage.put(path, input.body.stream(), input.contentType);
await mark("storage.put from the spool's stream (job-service.ts create → local file)");
const job = {
  id: "j",
  params: { prompt: "bench", output_format: "jpeg", safety_tolerance: 2 },
  inputs: [{ slot: "input_image", kind: "upload", path, content_type: input.contentType, bytes: input.body.size }],
} as unknown as JobRow;
const blob = await buildSubmitBody(job, storage, undefined, new Map([[path, input.body]]));
await mark("buildSubmitBody: base64 3 MiB at a time from the spool into a Blob (submit-body.ts)");
await submit(blob);
// Keep everything reachable until the end, as the service's request handler does.
const kept: unknown[] = [request, read, blob];
await disposeImages(read.images);
await Deno.remove(dir, { recursive: true });
console.log(`MEMORY_JSON ${JSON.stringify({ imageBytes: IMAGE_BYTES, steps, kept: kept.length })}`);
