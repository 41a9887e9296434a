/**
 * Real image bytes for tests: small valid PNGs and JPEGs, and PNGs of a chosen file size.
 *
 * Everything here is deterministic for a given seed so tests can compare bytes, and fast
 * enough to build a 20 MB file in a few tens of milliseconds.
 */
import { deflateSync } from "node:zlib";
import { Buffer } from "node:buffer";
import jpeg from "jpeg-js";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 as used by PNG chunks (and zlib/gzip). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Small xorshift PRNG: deterministic per seed, much faster than crypto for bulk noise. */
function prng(seed: number): () => number {
  let x = (seed | 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Builds one PNG chunk: length, type, data, CRC over type + data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** RGBA pixels: a gradient tinted by the seed, so different seeds give different images. */
function pixels(width: number, height: number, seed: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  const next = prng(seed);
  const tint = [next() & 0xff, next() & 0xff, next() & 0xff];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba[i] = (tint[0] + (x * 255) / Math.max(1, width - 1)) & 0xff;
      rgba[i + 1] = (tint[1] + (y * 255) / Math.max(1, height - 1)) & 0xff;
      rgba[i + 2] = tint[2];
      rgba[i + 3] = 255;
    }
  }
  return rgba;
}

function assertSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`Image size must be positive integers, got ${width}x${height}`);
  }
}

/** Valid 8-bit RGB PNG (signature, IHDR, one zlib IDAT, IEND, correct CRCs). */
export function makePng(width: number, height: number, seed = 1): Uint8Array {
  return buildPng(width, height, seed, []);
}

function buildPng(width: number, height: number, seed: number, extra: Uint8Array[]): Uint8Array {
  assertSize(width, height);
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, no filter, no interlace

  const rgba = pixels(width, height, seed);
  const stride = width * 3 + 1; // each scanline starts with its filter-type byte (0 = none)
  const raw = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const src = (y * width + x) * 4;
      const dst = y * stride + 1 + x * 3;
      raw[dst] = rgba[src];
      raw[dst + 1] = rgba[src + 1];
      raw[dst + 2] = rgba[src + 2];
    }
  }
  const idat = new Uint8Array(deflateSync(raw));
  return concat([
    Uint8Array.from(PNG_SIGNATURE),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    ...extra,
    chunk("IEND", new Uint8Array(0)),
  ]);
}

/** Valid baseline JPEG via jpeg-js (quality 80). */
export function makeJpeg(width: number, height: number, seed = 1): Uint8Array {
  assertSize(width, height);
  const encoded = jpeg.encode({ data: pixels(width, height, seed), width, height }, 80);
  // Copy out of the Node Buffer so callers get a plain Uint8Array (what fetch/Response expect).
  return new Uint8Array(encoded.data);
}

/**
 * Valid PNG whose file size is exactly `targetBytes` (or the smallest possible PNG when the
 * target is below that, about 100 bytes). The bulk is a private ancillary chunk ("pdAt":
 * lowercase first letter = decoders may skip it) of incompressible noise, so the file stays
 * large after gzip/deflate and building it costs one CRC pass.
 */
export function makeLargePng(targetBytes: number, seed = 1): Uint8Array {
  const base = makePng(8, 8, seed);
  const payloadLength = targetBytes - base.length - 12;
  if (payloadLength < 0) return base;

  const payload = new Uint8Array(payloadLength);
  const words = new Uint32Array(payload.buffer, 0, payloadLength >>> 2);
  const next = prng(seed ^ 0x5bd1e995);
  for (let i = 0; i < words.length; i++) words[i] = next();
  for (let i = words.length * 4; i < payloadLength; i++) payload[i] = next() & 0xff;

  // Splice the chunk in before IEND (the last 12 bytes of the base file).
  const iendAt = base.length - 12;
  return concat([base.subarray(0, iendAt), chunk("pdAt", payload), base.subarray(iendAt)]);
}

/** Standard base64 (Deno 2.1's V8 has no Uint8Array.prototype.toBase64; btoa overflows on MBs). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
