// Spooled uploads: what comes back out is exactly what went in (bytes, size, head, SHA-256),
// the limit is enforced as bytes arrive, and dispose() leaves no file behind.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { IMAGE_HEAD_BYTES, imageBodyFromBytes } from "../shared/images/image-body.ts";
import { ImageSpool, ImageTooLargeError } from "../shared/images/spool-image.ts";

const sample = (size: number) => new Uint8Array(size).map((_, i) => (i * 31 + (i >> 8)) % 256);
const readAll = async (stream: ReadableStream<Uint8Array>) => new Uint8Array(await new Response(stream).arrayBuffer());
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("ImageSpool returns the bytes written, in any chunking, with their head and SHA-256", async () => {
  const bytes = sample(3 * 1024 * 1024 + 17);
  const spool = await ImageSpool.create(bytes.byteLength);
  for (let at = 0; at < bytes.byteLength; at += 65_536 + 3) await spool.write(bytes.subarray(at, at + 65_536 + 3));
  const body = spool.finish();
  try {
    assert.equal(body.size, bytes.byteLength);
    assert.ok(Buffer.from(body.head).equals(bytes.subarray(0, IMAGE_HEAD_BYTES)));
    assert.equal(body.sha256(), sha256(bytes));
    // Every stream starts from the beginning.
    assert.ok(Buffer.from(await readAll(body.stream())).equals(bytes));
    assert.ok(Buffer.from(await readAll(body.stream())).equals(bytes));
  } finally {
    await body.dispose();
  }
  assert.equal(await exists(spool.path), false, "dispose() deletes the spool file");
  await body.dispose(); // twice is fine
});

Deno.test("ImageSpool refuses the chunk that passes the limit, and dispose() removes what was written", async () => {
  const spool = await ImageSpool.create(100_000);
  await spool.write(sample(60_000));
  await spool.write(sample(40_000)); // exactly the limit is fine
  await assert.rejects(spool.write(sample(1)), (error) => error instanceof ImageTooLargeError && error.limit === 100_000);
  assert.equal(await exists(spool.path), true);
  await spool.dispose();
  assert.equal(await exists(spool.path), false);
});

Deno.test("imageBodyFromBytes streams views of the same bytes and hashes them once asked", async () => {
  const bytes = sample(2 * 1024 * 1024 + 5);
  const body = imageBodyFromBytes(bytes);
  assert.equal(body.size, bytes.byteLength);
  assert.equal(body.head.byteLength, IMAGE_HEAD_BYTES);
  assert.equal(body.sha256(), sha256(bytes));
  assert.ok(Buffer.from(await readAll(body.stream())).equals(bytes));
  const small = imageBodyFromBytes(sample(10));
  assert.equal(small.head.byteLength, 10);
});
