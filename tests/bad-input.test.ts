// Bad input through HTTP: a clear 4xx JSON error naming the field, never a 500, and nothing left
// behind — no job row, no provider call, no stored file.
import assert from "node:assert/strict";
import { startHarness, type Harness } from "./support/harness.ts";
import { makeLargePng, makePng, toBase64 } from "./support/test-images.ts";

const png = toBase64(makePng(8, 8));

interface Case {
  name: string;
  status: number;
  field?: string;
  code?: string;
  body: () => BodyInit;
  contentType?: string;
}

const jsonCase = (name: string, status: number, field: string | undefined, body: unknown, code?: string): Case => ({
  name,
  status,
  field,
  code,
  body: () => JSON.stringify(body),
  contentType: "application/json",
});

const formCase = (name: string, status: number, field: string, fill: (form: FormData) => void, code?: string): Case => ({
  name,
  status,
  field,
  code,
  body: () => {
    const form = new FormData();
    form.set("prompt", "edit this");
    fill(form);
    return form;
  },
});

const cases: Case[] = [
  { name: "malformed JSON", status: 400, code: "invalid_json", body: () => '{"prompt": "x",', contentType: "application/json" },
  { name: "a JSON array", status: 400, code: "invalid_json", body: () => "[1,2]", contentType: "application/json" },
  { name: "an unsupported content type", status: 415, code: "unsupported_media_type", body: () => "prompt=x", contentType: "text/plain" },
  jsonCase("an unknown model", 400, "model", { model: "flux-dev", prompt: "x" }),
  jsonCase("an unknown field", 400, "width", { prompt: "x", width: 1024 }),
  jsonCase("a missing prompt", 400, "prompt", { seed: 1 }),
  jsonCase("an empty prompt", 400, "prompt", { prompt: "" }),
  jsonCase("a blank prompt", 400, "prompt", { prompt: "   " }),
  jsonCase("an over-long prompt", 400, "prompt", { prompt: "a".repeat(2049) }),
  jsonCase("an aspect ratio wider than 7:3", 400, "aspect_ratio", { prompt: "x", aspect_ratio: "8:3" }),
  jsonCase("an aspect ratio taller than 3:7", 400, "aspect_ratio", { prompt: "x", aspect_ratio: "1:3" }),
  jsonCase("a malformed aspect ratio", 400, "aspect_ratio", { prompt: "x", aspect_ratio: "wide" }),
  jsonCase("a zero aspect ratio", 400, "aspect_ratio", { prompt: "x", aspect_ratio: "0:1" }),
  jsonCase("a string seed", 400, "seed", { prompt: "x", seed: "abc" }),
  jsonCase("a fractional seed", 400, "seed", { prompt: "x", seed: 1.5 }),
  jsonCase("a non-boolean prompt_upsampling", 400, "prompt_upsampling", { prompt: "x", prompt_upsampling: "yes" }),
  jsonCase("an unknown output format", 400, "output_format", { prompt: "x", output_format: "webp" }),
  jsonCase("safety_tolerance above 6", 400, "safety_tolerance", { prompt: "x", safety_tolerance: 7 }),
  jsonCase("safety_tolerance above 2 on a Kontext edit", 400, "safety_tolerance", { prompt: "x", input_image: png, safety_tolerance: 3 }),
  jsonCase("steps on a Kontext model", 400, "steps", { prompt: "x", steps: 20 }),
  jsonCase("guidance on a Kontext model", 400, "guidance", { prompt: "x", guidance: 3 }),
  jsonCase("bagel without an image", 400, "input_image", { model: "flux-bagel-alpha", prompt: "x" }),
  jsonCase("bagel steps above 150", 400, "steps", { model: "flux-bagel-alpha", prompt: "x", input_image: png, steps: 151 }),
  jsonCase("bagel steps of 0", 400, "steps", { model: "flux-bagel-alpha", prompt: "x", input_image: png, steps: 0 }),
  jsonCase("bagel guidance below 0.1", 400, "guidance", { model: "flux-bagel-alpha", prompt: "x", input_image: png, guidance: 0.05 }),
  jsonCase("bagel guidance above 99", 400, "guidance", { model: "flux-bagel-alpha", prompt: "x", input_image: png, guidance: 100 }),
  jsonCase("bagel with a second reference image", 400, "input_image_2", {
    model: "flux-bagel-alpha",
    prompt: "x",
    input_image: png,
    input_image_2: png,
  }),
  jsonCase("bagel with an aspect ratio", 400, "aspect_ratio", { model: "flux-bagel-alpha", prompt: "x", input_image: png, aspect_ratio: "1:1" }),
  jsonCase("an input image that is a number", 400, "input_image", { prompt: "x", input_image: 12 }),
  jsonCase("base64 that does not decode", 400, "input_image", { prompt: "x", input_image: "not*base64!" }),
  jsonCase("base64 of bytes that are not an image", 415, "input_image_2", { prompt: "x", input_image: png, input_image_2: toBase64(new TextEncoder().encode("just some text, not a picture")) }, "unsupported_image_type"),
  jsonCase("a plain http image URL", 400, "input_image", { prompt: "x", input_image: "http://example.com/a.png" }),
  jsonCase("a data URI that is not base64", 400, "input_image", { prompt: "x", input_image: "data:image/png,abc" }),
  formCase("an uploaded file that is not an image", 415, "input_image", (form) => {
    form.set("input_image", new File(["%PDF-1.7 not an image"], "doc.pdf"));
  }, "unsupported_image_type"),
  formCase("an empty uploaded file", 400, "input_image", (form) => form.set("input_image", new File([], "empty.png"))),
  formCase("a file in a text field", 400, "seed", (form) => form.set("seed", new File(["1"], "seed.txt"))),
  formCase("a non-numeric seed in a form", 400, "seed", (form) => form.set("seed", "twelve")),
  formCase("a field given twice", 400, "seed", (form) => {
    form.append("seed", "1");
    form.append("seed", "2");
  }),
  formCase("an image over 20 MB", 413, "input_image", (form) => {
    form.set("input_image", new File([makeLargePng(20 * 1024 * 1024 + 1)], "huge.png"));
  }, "image_too_large"),
  formCase("a file part for an unknown field", 400, "mask", (form) => form.set("mask", new File([makePng(8, 8)], "m.png"))),
  formCase("an over-long text field", 413, "prompt", (form) => form.set("prompt", "a".repeat(70_000)), "field_too_large"),
  formCase("a valid image with an invalid field after it", 400, "seed", (form) => {
    form.set("input_image", new File([makePng(8, 8)], "cat.png"));
    form.set("seed", "twelve");
  }),
  {
    name: "a multipart body cut off before its closing boundary",
    status: 400,
    code: "invalid_body",
    contentType: "multipart/form-data; boundary=b",
    body: () => `--b\r\nContent-Disposition: form-data; name="input_image"; filename="a.png"\r\n\r\n${"x".repeat(1000)}`,
  },
  {
    name: "a multipart body without a boundary",
    status: 400,
    code: "invalid_body",
    contentType: "multipart/form-data",
    body: () => "--b--",
  },
];

// Multipart uploads are spooled to the system temporary folder: point it at one we can watch.
const spoolDir = await Deno.makeTempDir({ prefix: "spool-test-" });
Deno.env.set("TMPDIR", spoolDir);

async function assertNothingLeft(h: Harness) {
  const spooled = (await Array.fromAsync(Deno.readDir(spoolDir))).filter((e) => e.name.startsWith("image-upload-"));
  assert.deepEqual(spooled, [], "no spooled upload");
  const rows = await h.sql.query("select count(*)::int as n from public.image_jobs");
  assert.equal((rows[0] as { n: number }).n, 0, "no job row");
  assert.equal(h.sim.counts.submitRequests, 0, "no provider call");
  assert.deepEqual(await h.storedFiles(), [], "no stored file");
}

Deno.test("bad input: 4xx naming the field, nothing left behind", async (t) => {
  const h = await startHarness({ env: { MAX_BODY_BYTES: String(32 * 1024 * 1024) } });
  try {
    for (const c of cases) {
      await t.step(c.name, async () => {
        const response = await fetch(`${h.base}/jobs`, {
          method: "POST",
          body: c.body(),
          headers: c.contentType ? { "content-type": c.contentType } : {},
        });
        const body = await response.json();
        assert.equal(response.status, c.status, JSON.stringify(body));
        assert.equal(typeof body.error.code, "string");
        assert.equal(typeof body.error.message, "string");
        if (c.code) assert.equal(body.error.code, c.code);
        if (c.field) {
          const fields = (body.error.details ?? []).map((d: { field: string }) => d.field);
          assert.ok(fields.includes(c.field), `details name ${c.field}: ${JSON.stringify(body.error)}`);
          assert.ok(body.error.message.includes(c.field), `the message names ${c.field}: ${body.error.message}`);
        }
        await assertNothingLeft(h);
      });
    }
  } finally {
    await h.close();
  }
});

Deno.test("an oversize body is refused with 413 before it is read, leaving nothing behind", async () => {
  const h = await startHarness({ env: { MAX_BODY_BYTES: "100000" } });
  try {
    const declared = await fetch(`${h.base}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "x", input_image: "A".repeat(200_000) }),
    });
    assert.equal(declared.status, 413);
    assert.equal((await declared.json()).error.code, "payload_too_large");

    // Without a content-length (a stream), the limit is enforced while reading.
    const chunks = [new TextEncoder().encode('{"prompt":"x","input_image":"'), new Uint8Array(150_000).fill(65)];
    const streamed = await fetch(`${h.base}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
    });
    assert.equal(streamed.status, 413);
    await streamed.body?.cancel();
    await assertNothingLeft(h);

    // A streamed multipart upload is refused as its bytes pass the limit, not after buffering
    // them: this body never ends, so only a server that stops reading can answer it.
    const head = new TextEncoder().encode(
      '--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n' +
        '--b\r\nContent-Disposition: form-data; name="input_image"; filename="a.png"\r\n\r\n',
    );
    let sent = 0;
    const upload = await fetch(`${h.base}/jobs`, {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=b" },
      signal: AbortSignal.timeout(15_000),
      body: new ReadableStream({
        pull(controller) {
          controller.enqueue(sent === 0 ? head : new Uint8Array(16_384).fill(137));
          sent += 1;
        },
      }),
    }).catch((error) => error as Error);
    if (upload instanceof Response) {
      assert.equal(upload.status, 413);
      assert.equal((await upload.json()).error.code, "payload_too_large");
    } else {
      // The server may also close the connection on the rest of the upload: a refusal too.
      assert.notEqual(upload.name, "TimeoutError", "the server answered an endless upload");
    }
    await assertNothingLeft(h);
  } finally {
    await h.close();
  }
});

Deno.test("reads: a malformed id is a 400, an unknown one a 404, both JSON", async () => {
  const h = await startHarness();
  try {
    const malformed = await fetch(`${h.base}/jobs/not-a-uuid`);
    assert.equal(malformed.status, 400);
    assert.equal((await malformed.json()).error.details[0].field, "id");
    const missing = await fetch(`${h.base}/jobs/${crypto.randomUUID()}`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, "job_not_found");
    const limit = await fetch(`${h.base}/jobs?limit=1000`);
    assert.equal(limit.status, 400);
    assert.equal((await limit.json()).error.details[0].field, "limit");
    const route = await fetch(`${h.base}/nothing-here`);
    assert.equal(route.status, 404);
    assert.equal((await route.json()).error.code, "not_found");
  } finally {
    await h.close();
  }
});
