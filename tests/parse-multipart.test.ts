// The streaming multipart parser: what browsers' and Deno's FormData send, split at every byte,
// parses to the same fields; malformed bodies are a 400 naming the problem; a sink's own error
// stops the parse.
import assert from "node:assert/strict";
import { ApiError } from "../shared/http/api-error.ts";
import { multipartBoundary, parseMultipart } from "../shared/http/parse-multipart.ts";

interface Parsed {
  name: string;
  filename?: string;
  contentType?: string;
  data: string;
}

/** Parses `body` delivered in chunks of `chunkSize` bytes (the last may be shorter). */
async function parse(body: Uint8Array, boundary: string, chunkSize = body.byteLength): Promise<Parsed[]> {
  const parts: Parsed[] = [];
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= body.byteLength) return controller.close();
      controller.enqueue(body.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
  await parseMultipart(stream, boundary, (part) => {
    const chunks: Uint8Array[] = [];
    return {
      write: (chunk) => void chunks.push(chunk.slice()),
      close: () => void parts.push({ ...part, data: new TextDecoder("latin1").decode(concat(chunks)) }),
    };
  });
  return parts;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Serialises a FormData the way Deno's fetch does, returning the bytes and the boundary. */
async function encodeForm(form: FormData): Promise<{ body: Uint8Array; boundary: string }> {
  const request = new Request("http://x/", { method: "POST", body: form });
  const boundary = multipartBoundary(request.headers.get("content-type")!);
  assert.ok(boundary);
  return { body: new Uint8Array(await request.arrayBuffer()), boundary };
}

const enc = (text: string) => new TextEncoder().encode(text);

Deno.test("parseMultipart() reads text fields and files, whatever the chunking", async () => {
  const binary = new Uint8Array(3000).map((_, i) => (i * 7) % 256);
  // Bytes that look like the start of a delimiter inside the file must survive.
  binary.set(enc("\r\n--"), 100);
  const form = new FormData();
  form.set("prompt", "a cat – in ünïcode");
  form.set("input_image", new File([binary], "cat.png", { type: "image/png" }));
  form.set("seed", "42");
  const { body, boundary } = await encodeForm(form);
  const expected = [
    { name: "prompt", filename: undefined, contentType: undefined, data: new TextDecoder("latin1").decode(enc("a cat – in ünïcode")) },
    { name: "input_image", filename: "cat.png", contentType: "image/png", data: new TextDecoder("latin1").decode(binary) },
    { name: "seed", filename: undefined, contentType: undefined, data: "42" },
  ];
  for (const size of [1, 2, 3, 7, 64, 999, body.byteLength]) {
    assert.deepEqual(await parse(body, boundary, size), expected, `chunks of ${size} bytes`);
  }
});

Deno.test("parseMultipart() handles a preamble, transport padding, an empty part and quoted names", async () => {
  const boundary = "b0undary";
  const body = enc(
    "ignored preamble\r\n" +
      `--${boundary}  \r\n` +
      'Content-Disposition: form-data; name="a \\"quoted\\" name"\r\n\r\n' +
      "one\r\n" +
      `--${boundary}\r\n` +
      'Content-Disposition: form-data; name=empty; filename=""\r\n\r\n' +
      `\r\n--${boundary}--\r\nepilogue`,
  );
  for (const size of [1, 5, body.byteLength]) {
    assert.deepEqual(await parse(body, boundary, size), [
      { name: 'a "quoted" name', filename: undefined, contentType: undefined, data: "one" },
      { name: "empty", filename: "", contentType: undefined, data: "" },
    ]);
  }
});

async function assertMalformed(body: string, boundary: string, why: RegExp) {
  await assert.rejects(parse(enc(body), boundary), (error) => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.code, "invalid_body");
    assert.match(error.message, /^Cannot read the multipart body: /);
    assert.match(error.message, why);
    return true;
  });
}

Deno.test("parseMultipart() refuses malformed bodies with 400 invalid_body", async () => {
  const part = 'Content-Disposition: form-data; name="a"\r\n\r\nx';
  await assertMalformed(`--b\r\n${part}`, "b", /ends before the closing boundary/);
  await assertMalformed(`--b\r\n${part}\r\n--b`, "b", /ends before the closing boundary/);
  await assertMalformed("no boundary at all", "b", /ends before the closing boundary/);
  await assertMalformed("--b--\r\n", "b", /has no parts/);
  await assertMalformed(`--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--`, "b", /no Content-Disposition/);
  await assertMalformed(`--b\r\nContent-Disposition: attachment; name="a"\r\n\r\nx\r\n--b--`, "b", /no Content-Disposition/);
  await assertMalformed(`--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--`, "b", /no field name/);
  await assertMalformed(`--b\r\nno colon here\r\n\r\nx\r\n--b--`, "b", /header has no name/);
  await assertMalformed(`--b\r\n${"X-Long: ".padEnd(20_000, "y")}\r\n\r\nx\r\n--b--`, "b", /headers are too long/);
  await assertMalformed(`--b\r\n${part}\r\n--bogus\r\n\r\n--b--`, "b", /trailing characters/);
});

Deno.test("parseMultipart() stops at a sink's error and passes it on unchanged", async () => {
  const form = new FormData();
  form.set("big", new File([new Uint8Array(100_000)], "big.bin"));
  form.set("after", "never reached");
  const { body, boundary } = await encodeForm(form);
  const refused = new ApiError(413, "too_big", "Too big");
  const seen: string[] = [];
  let written = 0;
  let offset = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= body.byteLength) return controller.close();
      controller.enqueue(body.slice(offset, offset + 1000));
      offset += 1000;
    },
    cancel: () => void (cancelled = true),
  });
  await assert.rejects(
    parseMultipart(stream, boundary, (part) => {
      seen.push(part.name);
      return {
        write(chunk) {
          written += chunk.byteLength;
          if (written > 10_000) throw refused;
        },
        close() {},
      };
    }),
    (error) => error === refused,
  );
  assert.deepEqual(seen, ["big"]);
  assert.ok(offset < body.byteLength / 2, `stopped reading early (read ${offset} of ${body.byteLength} bytes)`);
  assert.ok(cancelled, "the body stream is cancelled");
});

Deno.test("multipartBoundary() reads plain and quoted boundaries", () => {
  assert.equal(multipartBoundary("multipart/form-data; boundary=abc"), "abc");
  assert.equal(multipartBoundary('multipart/form-data; boundary="a b:c"'), "a b:c");
  assert.equal(multipartBoundary("multipart/form-data; charset=utf-8; BOUNDARY=x-1"), "x-1");
  assert.equal(multipartBoundary("multipart/form-data"), null);
  assert.equal(multipartBoundary(`multipart/form-data; boundary=${"x".repeat(71)}`), null);
});

Deno.test("parseMultipart() reports a body that breaks off as an interrupted upload, and passes a body limit's error on", async () => {
  const broken = (error: unknown) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(enc('--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nxyz'));
      },
      pull(controller) {
        controller.error(error);
      },
    });
  const sink = () => ({ write() {}, close() {} });
  await assert.rejects(parseMultipart(broken(new TypeError("connection reset")), "b", sink), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.match(error.message, /the upload was interrupted/);
    return true;
  });
  const limit = new ApiError(413, "payload_too_large", "Too large");
  await assert.rejects(parseMultipart(broken(limit), "b", sink), (error) => error === limit);
});
