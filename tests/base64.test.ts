/**
 * Unit tests of shared/images/base64.ts: RFC 4648 vectors, round trips up to 20 MiB (checked
 * against node:buffer and an independent chunked-btoa encoder, and via SHA-256), strict decoding,
 * and the size estimate used for early 413s.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { decodeBase64, decodedBase64Length, encodeBase64 } from "../shared/images/base64.ts";

const KIB = 1024;
const MIB = 1024 * 1024;

const text = (value: string) => new TextEncoder().encode(value);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Random bytes of any length (getRandomValues fills at most 64 KiB per call). */
function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(length, offset + 65536)));
  }
  return bytes;
}

/** An oracle that shares no code with node:buffer: btoa over 8 KiB chunks (multiples of 3). */
function chunkedBtoa(bytes: Uint8Array): string {
  const chunk = 3 * 2730;
  const parts: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunk) {
    parts.push(btoa(String.fromCharCode(...bytes.subarray(offset, offset + chunk))));
  }
  return parts.join("");
}

// RFC 4648 §10 test vectors.
const RFC_4648_VECTORS: [string, string][] = [
  ["", ""],
  ["f", "Zg=="],
  ["fo", "Zm8="],
  ["foo", "Zm9v"],
  ["foob", "Zm9vYg=="],
  ["fooba", "Zm9vYmE="],
  ["foobar", "Zm9vYmFy"],
];

for (const [plain, encoded] of RFC_4648_VECTORS) {
  Deno.test(`encodeBase64() encodes the RFC 4648 vector "${plain}" as "${encoded}"`, () => {
    assert.equal(encodeBase64(text(plain)), encoded);
  });
  if (encoded !== "") {
    Deno.test(`decodeBase64() decodes the RFC 4648 vector "${encoded}" to "${plain}"`, () => {
      const decoded = decodeBase64(encoded);
      assert.ok(decoded, "decodes");
      assert.equal(new TextDecoder().decode(decoded), plain);
      assert.equal(decoded.byteLength, plain.length);
    });
  }
  Deno.test(`decodedBase64Length("${encoded}") is ${plain.length}`, () => {
    assert.equal(decodedBase64Length(encoded), plain.length);
  });
}

const ROUND_TRIP_SIZES: [string, number][] = [
  ["0 bytes", 0],
  ["1 byte", 1],
  ["2 bytes", 2],
  ["3 bytes", 3],
  ["64 KiB", 64 * KIB],
  ["1 MiB", MIB],
  ["20 MiB", 20 * MIB],
];

for (const [label, size] of ROUND_TRIP_SIZES) {
  Deno.test(`encodeBase64() round-trips ${label} of random bytes`, () => {
    const bytes = randomBytes(size);
    const encoded = encodeBase64(bytes);
    assert.equal(encoded.length, 4 * Math.ceil(size / 3), "padded length");
    // Compare strings (cheap) rather than deepEqual on megabyte arrays.
    assert.ok(encoded === Buffer.from(bytes).toString("base64"), "matches node:buffer");
    assert.ok(encoded === chunkedBtoa(bytes), "matches chunked btoa");
    assert.equal(decodedBase64Length(encoded), size);
    if (size === 0) {
      // "" is not accepted as an image payload: decodeBase64 rejects it by design.
      assert.equal(decodeBase64(encoded), null);
      return;
    }
    const decoded = decodeBase64(encoded);
    assert.ok(decoded, "decodes");
    assert.equal(decoded.byteLength, size);
    assert.equal(sha256(decoded), sha256(bytes), "same SHA-256 after the round trip");
  });
}

Deno.test("encodeBase64() of a subarray with a non-zero byteOffset encodes only its own bytes", () => {
  const whole = Uint8Array.from({ length: 32 }, (_, i) => i);
  const middle = whole.subarray(3, 6); // bytes 3, 4, 5
  assert.equal(middle.byteOffset, 3);
  assert.equal(encodeBase64(middle), "AwQF");
  assert.equal(encodeBase64(whole.subarray(30)), Buffer.from([30, 31]).toString("base64"));
  assert.equal(encodeBase64(whole.subarray(5, 5)), "");

  // A large view into a larger buffer (offset not a multiple of 3, length not either).
  const big = randomBytes(MIB + 7);
  const view = big.subarray(5, MIB + 3);
  const encoded = encodeBase64(view);
  assert.equal(sha256(decodeBase64(encoded)!), sha256(view));
  assert.ok(encoded === Buffer.from(big.slice(5, MIB + 3)).toString("base64"));
});

Deno.test("decodeBase64() returns a view of exactly the decoded bytes", () => {
  const decoded = decodeBase64("Zm9vYmFy")!;
  // Callers wrap the result in a DataView/Blob via buffer+byteOffset: those must agree.
  assert.deepEqual([...new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength)], [
    ...text("foobar"),
  ]);
});

const INVALID_BASE64: [string, string][] = [
  ["the empty string", ""],
  ["only whitespace", " \n\t "],
  ["a bad character (!)", "Zm9v!mFy"],
  ["a bad character (*)", "not*base64!"],
  ["base64url characters (- and _)", "-_-_"],
  ["a non-ASCII character", "Zm9vYé=="],
  ["a length that is not a multiple of 4 (1)", "Z"],
  ["a length that is not a multiple of 4 (3)", "Zm9"],
  ["a length that is not a multiple of 4 (5)", "Zm9vY"],
  ["unpadded input", "Zg"],
  ["padding in the middle", "Zg==Zm9v"],
  ["padding then data in the last quantum", "Zm=v"],
  ["three padding characters", "Z==="],
  ["only padding", "===="],
  ["a data: URI (the prefix is the caller's job)", "data:image/png;base64,Zm9v"],
];

for (const [name, input] of INVALID_BASE64) {
  Deno.test(`decodeBase64() rejects ${name}`, () => {
    assert.equal(decodeBase64(input), null);
  });
}

const WRAPPED_BASE64: [string, string, string][] = [
  ["LF line breaks", "Zm9v\nYmFy", "foobar"],
  ["CRLF line breaks and a trailing newline", "Zm9v\r\nYmFy\r\n", "foobar"],
  ["a break inside a quantum", "Zm\n9vYg==", "foob"],
  ["leading and trailing spaces", "  Zm9vYmE=  ", "fooba"],
];

for (const [name, input, plain] of WRAPPED_BASE64) {
  Deno.test(`decodeBase64() accepts line-wrapped base64 (${name})`, () => {
    const decoded = decodeBase64(input);
    assert.ok(decoded, "decodes");
    assert.equal(new TextDecoder().decode(decoded), plain);
  });
}

/** MIME-style wrapping: 76 characters a line. */
function wrap76(encoded: string, newline = "\r\n"): string {
  return encoded.match(/.{1,76}/g)?.join(newline) ?? "";
}

Deno.test("decodeBase64() accepts 76-column MIME-wrapped base64 of 64 KiB", () => {
  const bytes = randomBytes(64 * KIB + 1);
  const wrapped = wrap76(encodeBase64(bytes));
  assert.ok(wrapped.includes("\r\n"));
  const decoded = decodeBase64(wrapped);
  assert.ok(decoded, "decodes");
  assert.equal(sha256(decoded), sha256(bytes));
});

Deno.test("decodedBase64Length() matches the decoded length for every length from 0 to 64", () => {
  for (let size = 0; size <= 64; size++) {
    const bytes = randomBytes(size);
    const encoded = encodeBase64(bytes);
    assert.equal(decodedBase64Length(encoded), size, `size ${size}`);
    if (size > 0) assert.equal(decodeBase64(encoded)!.byteLength, size, `decoded size ${size}`);
  }
});

Deno.test({
  name: "decodedBase64Length() matches the decoded length of line-wrapped base64",
  fn() {
    const bytes = randomBytes(1000);
    const wrapped = wrap76(encodeBase64(bytes));
    assert.equal(decodeBase64(wrapped)!.byteLength, 1000);
    assert.equal(decodedBase64Length(wrapped), 1000);
  },
});

Deno.test("btoa(String.fromCharCode(...bytes)) overflows on 1 MiB in this runtime; encodeBase64() does not", () => {
  const bytes = randomBytes(MIB);
  // The naive idiom spreads a million arguments onto the stack: V8 throws a RangeError.
  assert.throws(() => btoa(String.fromCharCode(...bytes)), RangeError);
  const encoded = encodeBase64(bytes);
  assert.equal(encoded.length, 4 * Math.ceil(MIB / 3));
  assert.ok(encoded === chunkedBtoa(bytes), "same text as a (chunked) btoa");
});
