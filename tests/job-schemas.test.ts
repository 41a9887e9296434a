/**
 * Unit tests of the create-job request: the CreateJobRequest zod schema (shared/api/job-schemas.ts)
 * and readCreateRequest (shared/api/read-create-request.ts), which reads JSON or multipart bodies,
 * decodes, size-checks and sniffs the images, and throws ApiError naming the field.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { CreateJobRequest, UploadedImage } from "../shared/api/job-schemas.ts";
import { readCreateRequest } from "../shared/api/read-create-request.ts";
import type { ResolvedImage } from "../shared/jobs/job-service.ts";
import { ApiError } from "../shared/http/api-error.ts";
import { crc32, makeJpeg, makeLargePng, makePng, toBase64 } from "./support/test-images.ts";

const MIB = 1024 * 1024;

/** An image's bytes, read through its stream as the service reads them. */
async function bytesOf(image: ResolvedImage | undefined): Promise<Uint8Array> {
  assert.ok(image?.kind === "bytes", "an image with bytes");
  return new Uint8Array(await new Response(image.body.stream()).arrayBuffer());
}
const PNG = makePng(8, 8);
const PNG_B64 = toBase64(PNG);
const BAGEL = { model: "flux-bagel-alpha", prompt: "make it blue", input_image: PNG_B64 };

type Body = Record<string, unknown>;

function parse(body: Body) {
  return CreateJobRequest.safeParse(body);
}

/** The fields a failed parse names (dotted paths, or the unknown keys). */
function failingFields(body: Body): string[] {
  const result = parse(body);
  assert.equal(result.success, false, `expected ${JSON.stringify(body).slice(0, 200)} to be rejected`);
  return result.error!.issues.flatMap((issue) =>
    issue.code === "unrecognized_keys" ? issue.keys : [issue.path.join(".")]
  );
}

function assertAccepted(body: Body) {
  const result = parse(body);
  assert.ok(result.success, `expected acceptance: ${JSON.stringify(result.error?.issues)}`);
  return result.data;
}

function assertRejected(body: Body, field: string) {
  const fields = failingFields(body);
  assert.ok(fields.includes(field), `expected an issue on ${field}, got ${JSON.stringify(fields)}`);
}

const jsonRequest = (body: unknown, contentType = "application/json") =>
  new Request("http://localhost/images/jobs", {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

const formRequest = (fields: Record<string, string | File>) => {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return new Request("http://localhost/images/jobs", { method: "POST", body: form });
};

/** Asserts readCreateRequest rejects with an ApiError of this status/code naming `field`. */
async function assertApiError(
  request: Request,
  expected: { status: number; code?: string; field?: string },
): Promise<ApiError> {
  let caught: unknown;
  try {
    await readCreateRequest(request);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ApiError, `expected an ApiError, got ${caught}`);
  assert.equal(caught.status, expected.status, caught.message);
  if (expected.code) assert.equal(caught.code, expected.code);
  if (expected.field) {
    const fields = (caught.details as { field: string }[] | undefined ?? []).map((d) => d.field);
    assert.ok(fields.includes(expected.field), `details name ${expected.field}: ${JSON.stringify(caught.details)}`);
  }
  return caught;
}

/** A PNG whose IHDR claims `width`x`height` (CRC recomputed); the pixel data is not consulted. */
function pngClaiming(width: number, height: number): Uint8Array {
  const bytes = makePng(1, 1).slice();
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(bytes, 12, 29)); // CRC over "IHDR" + 13 data bytes
  return bytes;
}

/** A JPEG whose SOF0 claims `width`x`height`. */
function jpegClaiming(width: number, height: number): Uint8Array {
  const bytes = makeJpeg(8, 8).slice();
  for (let i = 2; i < bytes.length - 8; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xc0) {
      const view = new DataView(bytes.buffer);
      view.setUint16(i + 5, height);
      view.setUint16(i + 7, width);
      return bytes;
    }
  }
  throw new Error("no SOF0 in the test JPEG");
}

/** A JPEG with `metadataBytes` of APP15 segments before its frame header (as big ICC/XMP blocks). */
function withMetadata(jpeg: Uint8Array, metadataBytes: number): Uint8Array {
  const segments: Uint8Array[] = [];
  for (let left = metadataBytes; left > 0;) {
    const payload = Math.min(left, 60_000);
    const segment = new Uint8Array(4 + payload);
    segment.set([0xff, 0xef, (payload + 2) >> 8, (payload + 2) & 0xff]);
    segments.push(segment);
    left -= payload;
  }
  return new Uint8Array(Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]));
}

// ------------------------------------------------------------------ the schema

Deno.test("CreateJobRequest applies defaults: flux-kontext-pro, jpeg, safety_tolerance 2", () => {
  const data = assertAccepted({ prompt: "a cat" });
  assert.deepEqual(data, { model: "flux-kontext-pro", prompt: "a cat", output_format: "jpeg", safety_tolerance: 2 });
  // Explicit values win over defaults.
  const explicit = assertAccepted({ prompt: "a cat", model: "flux-kontext-max", output_format: "png", safety_tolerance: 0 });
  assert.equal(explicit.model, "flux-kontext-max");
  assert.equal(explicit.output_format, "png");
  assert.equal(explicit.safety_tolerance, 0);
});

const ASPECT_RATIOS: [string, boolean][] = [
  ["1:1", true],
  ["16:9", true],
  ["3:7", true],
  ["7:3", true],
  ["21:9", true],
  ["9:21", true],
  ["6:14", true], // = 3:7
  ["8:3", false],
  ["1:3", false],
  ["3:1", false],
  ["22:9", false],
  ["9:22", false],
  ["0:5", false],
  ["5:0", false],
  ["0:0", false],
  ["16x9", false],
  ["16:9:1", false],
  ["-16:9", false],
  ["1.5:1", false],
  ["", false],
  [" 16:9", false],
];

for (const [ratio, ok] of ASPECT_RATIOS) {
  Deno.test(`CreateJobRequest ${ok ? "accepts" : "rejects"} aspect_ratio "${ratio}"`, () => {
    const body = { prompt: "a cat", aspect_ratio: ratio };
    if (ok) assert.equal(assertAccepted(body).aspect_ratio, ratio);
    else assertRejected(body, "aspect_ratio");
  });
}

Deno.test("CreateJobRequest: safety_tolerance 0..6 for Kontext text-to-image, at most 2 for any Kontext edit", () => {
  for (const model of ["flux-kontext-pro", "flux-kontext-max"]) {
    for (let value = 0; value <= 6; value++) {
      assertAccepted({ model, prompt: "a cat", safety_tolerance: value });
    }
    assertRejected({ model, prompt: "a cat", safety_tolerance: 7 }, "safety_tolerance");
    assertRejected({ model, prompt: "a cat", safety_tolerance: -1 }, "safety_tolerance");
    assertRejected({ model, prompt: "a cat", safety_tolerance: 1.5 }, "safety_tolerance");
    // Any image slot makes it an edit, base64 or URL, first slot or not.
    for (const slot of ["input_image", "input_image_2", "input_image_3", "input_image_4"]) {
      for (const image of [PNG_B64, "https://example.com/cat.png"]) {
        for (let value = 0; value <= 2; value++) {
          assertAccepted({ model, prompt: "edit", [slot]: image, safety_tolerance: value });
        }
        for (const value of [3, 6]) {
          assertRejected({ model, prompt: "edit", [slot]: image, safety_tolerance: value }, "safety_tolerance");
        }
      }
    }
  }
});

Deno.test("CreateJobRequest: flux-bagel-alpha takes safety_tolerance 0..6 and requires input_image", () => {
  for (let value = 0; value <= 6; value++) assertAccepted({ ...BAGEL, safety_tolerance: value });
  assertRejected({ ...BAGEL, safety_tolerance: 7 }, "safety_tolerance");
  assertRejected({ model: "flux-bagel-alpha", prompt: "make it blue" }, "input_image");
  assertRejected({ model: "flux-bagel-alpha", prompt: "x", input_image_2: PNG_B64 }, "input_image");
  assertRejected({ ...BAGEL, input_image_2: PNG_B64 }, "input_image_2");
  assertRejected({ ...BAGEL, aspect_ratio: "1:1" }, "aspect_ratio");
  assertRejected({ ...BAGEL, prompt_upsampling: true }, "prompt_upsampling");
});

const BAGEL_NUMBERS: [string, number, boolean][] = [
  ["steps", 1, true],
  ["steps", 50, true],
  ["steps", 150, true],
  ["steps", 0, false],
  ["steps", 151, false],
  ["steps", 1.5, false],
  ["steps", -1, false],
  ["guidance", 0.1, true],
  ["guidance", 3, true],
  ["guidance", 99, true],
  ["guidance", 0.09, false],
  ["guidance", 99.1, false],
  ["guidance", 0, false],
];

for (const [field, value, ok] of BAGEL_NUMBERS) {
  Deno.test(`CreateJobRequest ${ok ? "accepts" : "rejects"} flux-bagel-alpha ${field} ${value}`, () => {
    const body = { ...BAGEL, [field]: value };
    if (ok) assert.equal(assertAccepted(body)[field as "steps" | "guidance"], value);
    else assertRejected(body, field);
  });
}

Deno.test("CreateJobRequest: steps and guidance are bagel-only; aspect_ratio and prompt_upsampling Kontext-only", () => {
  for (const model of ["flux-kontext-pro", "flux-kontext-max"]) {
    assertRejected({ model, prompt: "x", steps: 20 }, "steps");
    assertRejected({ model, prompt: "x", guidance: 3 }, "guidance");
    assertAccepted({ model, prompt: "x", aspect_ratio: "16:9", prompt_upsampling: true });
  }
  const data = assertAccepted({ ...BAGEL, steps: 30, guidance: 2.5, seed: 7 });
  assert.equal(data.steps, 30);
  assert.equal(data.guidance, 2.5);
  assert.equal(data.seed, 7);
});

Deno.test("CreateJobRequest trims the prompt and limits it to 2048 characters", () => {
  assert.equal(assertAccepted({ prompt: "  a cat \n" }).prompt, "a cat");
  assert.equal(assertAccepted({ prompt: "a".repeat(2048) }).prompt.length, 2048);
  // The limit applies after trimming.
  assert.equal(assertAccepted({ prompt: ` ${"a".repeat(2048)}  ` }).prompt.length, 2048);
  assertRejected({ prompt: "a".repeat(2049) }, "prompt");
  assertRejected({ prompt: "" }, "prompt");
  assertRejected({ prompt: " \t\n " }, "prompt");
  assertRejected({}, "prompt");
  assertRejected({ prompt: 12 }, "prompt");
});

Deno.test("CreateJobRequest is strict: unknown keys are rejected by name", () => {
  assert.deepEqual(failingFields({ prompt: "x", width: 1024 }), ["width"]);
  assert.deepEqual(failingFields({ prompt: "x", width: 1, height: 2 }).sort(), ["height", "width"]);
  // A provider field the service manages itself is not accepted from callers either.
  assertRejected({ prompt: "x", webhook_url: "https://example.com/hook" }, "webhook_url");
  assertRejected({ prompt: "x", input_image_5: PNG_B64 }, "input_image_5");
});

Deno.test("CreateJobRequest rejects wrong types without coercion (JSON is typed)", () => {
  assertRejected({ prompt: "x", seed: "42" }, "seed");
  assertRejected({ prompt: "x", seed: 1.5 }, "seed");
  assertRejected({ prompt: "x", prompt_upsampling: "true" }, "prompt_upsampling");
  assertRejected({ prompt: "x", safety_tolerance: "2" }, "safety_tolerance");
  assertRejected({ prompt: "x", output_format: "webp" }, "output_format");
  assertRejected({ prompt: "x", model: "flux-dev" }, "model");
  assertRejected({ prompt: "x", input_image: "" }, "input_image");
  assertRejected({ prompt: "x", input_image: 12 }, "input_image");
});

// ------------------------------------------------------------------ readCreateRequest

Deno.test("readCreateRequest() returns defaults, no images and the body as sent", async () => {
  const body = { prompt: "  a cat  ", seed: 3 };
  const input = await readCreateRequest(jsonRequest(body));
  assert.deepEqual(input.request, {
    model: "flux-kontext-pro",
    prompt: "a cat",
    seed: 3,
    output_format: "jpeg",
    safety_tolerance: 2,
  });
  assert.deepEqual(input.images, {});
  assert.deepEqual(input.fields, body);
});

Deno.test("readCreateRequest() decodes and sniffs a base64 image", async () => {
  const jpeg = makeJpeg(16, 16);
  const input = await readCreateRequest(jsonRequest({ prompt: "edit", input_image: PNG_B64, input_image_2: toBase64(jpeg) }));
  const first = input.images.input_image;
  assert.equal(first?.kind, "bytes");
  if (first?.kind !== "bytes") return;
  assert.equal(first.contentType, "image/png");
  assert.equal(first.format, "png");
  assert.deepEqual([...await bytesOf(first)], [...PNG]);
  const second = input.images.input_image_2;
  assert.equal(second?.kind === "bytes" && second.contentType, "image/jpeg");
});

Deno.test("readCreateRequest() strips a data: URI prefix from base64 images", async () => {
  for (const prefix of ["data:image/png;base64,", "DATA:image/png;BASE64,", "data:;base64,"]) {
    const input = await readCreateRequest(jsonRequest({ prompt: "edit", input_image: `${prefix}${PNG_B64}` }));
    const image = input.images.input_image;
    assert.equal(image?.kind, "bytes", prefix);
    assert.deepEqual([...await bytesOf(image)], [...PNG], prefix);
  }
  await assertApiError(jsonRequest({ prompt: "edit", input_image: `data:image/png,${PNG_B64}` }), {
    status: 400,
    field: "input_image",
  });
});

Deno.test("readCreateRequest() passes an https URL through as {kind: \"url\"} and rejects http", async () => {
  const url = "https://example.com/images/cat.png?sig=abc";
  const input = await readCreateRequest(jsonRequest({ prompt: "edit", input_image: url }));
  assert.deepEqual(input.images.input_image, { kind: "url", url });
  await assertApiError(jsonRequest({ prompt: "edit", input_image: "http://example.com/cat.png" }), {
    status: 400,
    code: "invalid_request",
    field: "input_image",
  });
  await assertApiError(jsonRequest({ prompt: "edit", input_image_3: "http://example.com/cat.png" }), {
    status: 400,
    field: "input_image_3",
  });
});

Deno.test("readCreateRequest() turns schema failures into a 400 ApiError with field details", async () => {
  const error = await assertApiError(jsonRequest({ prompt: "x", width: 1024, aspect_ratio: "8:3" }), {
    status: 400,
    code: "invalid_request",
  });
  assert.deepEqual(
    (error.details as { field: string }[]).map((d) => d.field).sort(),
    ["aspect_ratio", "width"],
  );
  assert.ok(error.message.includes("width"), error.message);
  await assertApiError(jsonRequest('{"prompt":'), { status: 400, code: "invalid_json" });
  await assertApiError(jsonRequest("[]"), { status: 400, code: "invalid_json" });
  await assertApiError(jsonRequest("prompt=x", "text/plain"), { status: 415, code: "unsupported_media_type" });
});

Deno.test("readCreateRequest() coerces multipart numbers and booleans", async () => {
  const input = await readCreateRequest(formRequest({
    prompt: " a cat ",
    model: "flux-kontext-max",
    seed: "42",
    safety_tolerance: "1",
    prompt_upsampling: "true",
    aspect_ratio: "16:9",
    output_format: "png",
    input_image: new File([PNG], "cat.png", { type: "image/png" }),
  }));
  const { input_image, ...rest } = input.request;
  assert.ok(input_image instanceof UploadedImage, "the file part stays a file");
  assert.deepEqual(rest, {
    model: "flux-kontext-max",
    prompt: "a cat",
    seed: 42,
    safety_tolerance: 1,
    prompt_upsampling: true,
    aspect_ratio: "16:9",
    output_format: "png",
  });
  const image = input.images.input_image;
  assert.equal(image?.kind, "bytes");
  if (image?.kind === "bytes") {
    assert.equal(image.contentType, "image/png");
    assert.deepEqual([...await bytesOf(image)], [...PNG]);
  }

  const no = await readCreateRequest(formRequest({ prompt: "x", prompt_upsampling: "false" }));
  assert.equal(no.request.prompt_upsampling, false);

  const bagel = await readCreateRequest(formRequest({
    model: "flux-bagel-alpha",
    prompt: "x",
    steps: "150",
    guidance: "0.1",
    input_image: PNG_B64, // a string part works like JSON
  }));
  assert.equal(bagel.request.steps, 150);
  assert.equal(bagel.request.guidance, 0.1);
  assert.equal(bagel.images.input_image?.kind, "bytes");
});

const BAD_FORM_VALUES: [string, string][] = [
  ["prompt_upsampling", "yes"],
  ["prompt_upsampling", "1"],
  ["prompt_upsampling", "TRUE"],
  ["seed", "twelve"],
  ["seed", ""],
  ["seed", "1.5"],
  ["safety_tolerance", "7"],
];

for (const [field, value] of BAD_FORM_VALUES) {
  Deno.test(`readCreateRequest() rejects multipart ${field}="${value}" with 400`, async () => {
    await assertApiError(formRequest({ prompt: "x", [field]: value }), { status: 400, field });
  });
}

Deno.test("readCreateRequest() rejects multipart unknown fields and files in text fields", async () => {
  await assertApiError(formRequest({ prompt: "x", width: "1024" }), { status: 400, field: "width" });
  await assertApiError(formRequest({ prompt: "x", seed: new File(["1"], "seed.txt") }), { status: 400, field: "seed" });
  await assertApiError(formRequest({ prompt: "x", input_image: new File([], "empty.png") }), {
    status: 400,
    field: "input_image",
  });
  await assertApiError(formRequest({ prompt: "x", input_image: new File(["%PDF-1.7"], "doc.pdf") }), {
    status: 415,
    code: "unsupported_image_type",
    field: "input_image",
  });
});

Deno.test("readCreateRequest() rejects a multipart field given twice", async () => {
  const form = new FormData();
  form.append("prompt", "x");
  form.append("seed", "1");
  form.append("seed", "2");
  const error = await assertApiError(new Request("http://localhost/images/jobs", { method: "POST", body: form }), {
    status: 400,
    field: "seed",
  });
  assert.match(error.message, /more than once/);
});

Deno.test({
  name: "readCreateRequest() reports a multipart field named like an Object.prototype member as unknown",
  async fn() {
    for (const name of ["constructor", "toString"]) {
      const error = await assertApiError(formRequest({ prompt: "x", [name]: "1" }), { status: 400, field: name });
      assert.doesNotMatch(error.message, /more than once/, name);
      assert.match(error.message, /Unknown field/, name);
    }
  },
});

Deno.test("readCreateRequest() accepts a 20 MiB upload and refuses 20 MiB + 1 byte with 413", async () => {
  const exact = makeLargePng(20 * MIB);
  assert.equal(exact.length, 20 * MIB);
  const input = await readCreateRequest(formRequest({ prompt: "x", input_image: new File([exact], "big.png") }));
  const image = input.images.input_image;
  assert.equal(image?.kind === "bytes" && image.body.size, 20 * MIB);

  const over = makeLargePng(20 * MIB + 1);
  assert.equal(over.length, 20 * MIB + 1);
  await assertApiError(formRequest({ prompt: "x", input_image: new File([over], "big.png") }), {
    status: 413,
    code: "image_too_large",
    field: "input_image",
  });
});

Deno.test("readCreateRequest() accepts 20 MiB as base64 and refuses 20 MiB + 1 byte with 413", async () => {
  const exact = makeLargePng(20 * MIB, 2);
  const input = await readCreateRequest(jsonRequest({ prompt: "x", input_image_4: toBase64(exact) }));
  const image = input.images.input_image_4;
  assert.equal(image?.kind === "bytes" && image.body.size, 20 * MIB);

  const over = toBase64(makeLargePng(20 * MIB + 1, 3));
  await assertApiError(jsonRequest({ prompt: "x", input_image_4: over }), {
    status: 413,
    code: "image_too_large",
    field: "input_image_4",
  });
  // The data: prefix does not count towards the size, nor hide it.
  await assertApiError(jsonRequest({ prompt: "x", input_image: `data:image/png;base64,${over}` }), {
    status: 413,
    field: "input_image",
  });
});

Deno.test({
  name: "readCreateRequest() accepts a line-wrapped base64 image just under 20 MiB",
  async fn() {
    const bytes = makeLargePng(20 * MIB - 1024, 4);
    const wrapped = toBase64(bytes).match(/.{1,76}/g)!.join("\r\n");
    const input = await readCreateRequest(jsonRequest({ prompt: "x", input_image: wrapped }));
    const image = input.images.input_image;
    assert.equal(image?.kind === "bytes" && image.body.size, bytes.length);
  },
});

Deno.test("readCreateRequest() accepts a small line-wrapped base64 image", async () => {
  const wrapped = PNG_B64.match(/.{1,20}/g)!.join("\n");
  assert.ok(wrapped.includes("\n"));
  const input = await readCreateRequest(jsonRequest({ prompt: "x", input_image: wrapped }));
  const image = input.images.input_image;
  assert.ok(image?.kind === "bytes");
  assert.deepEqual([...await bytesOf(image)], [...PNG]);
});

const PIXEL_LIMIT: [string, () => Uint8Array, boolean][] = [
  ["a PNG claiming 5000x5000 (25 MP)", () => pngClaiming(5000, 5000), false],
  ["a PNG claiming 5000x4001", () => pngClaiming(5000, 4001), false],
  ["a PNG claiming 5000x4000 (exactly 20 MP)", () => pngClaiming(5000, 4000), true],
  ["a PNG claiming 4472x4472 (19.99 MP)", () => pngClaiming(4472, 4472), true],
  ["a JPEG claiming 6000x4000 (24 MP)", () => jpegClaiming(6000, 4000), false],
  ["a JPEG claiming 4000x5000 (exactly 20 MP)", () => jpegClaiming(4000, 5000), true],
  // Its frame header lies past the first 256 KiB that are sniffed first: the check reads on.
  ["a JPEG claiming 6000x4000 behind 400 KB of metadata", () => withMetadata(jpegClaiming(6000, 4000), 400_000), false],
  ["a JPEG claiming 4000x5000 behind 400 KB of metadata", () => withMetadata(jpegClaiming(4000, 5000), 400_000), true],
];

for (const [name, bytes, ok] of PIXEL_LIMIT) {
  Deno.test(`readCreateRequest() ${ok ? "accepts" : "refuses with 413"} ${name}, uploaded or base64`, async () => {
    const image = bytes();
    const requests = [
      formRequest({ prompt: "x", input_image: new File([image], "claimed") }),
      jsonRequest({ prompt: "x", input_image: toBase64(image) }),
    ];
    for (const request of requests) {
      if (ok) {
        const input = await readCreateRequest(request);
        assert.equal(input.images.input_image?.kind, "bytes");
      } else {
        const error = await assertApiError(request, { status: 413, code: "image_too_large", field: "input_image" });
        assert.match(error.message, /megapixels/);
      }
    }
  });
}
