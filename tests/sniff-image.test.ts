/**
 * Unit tests of shared/images/sniff-image.ts: formats recognised by magic bytes only, and pixel
 * sizes read from real PNG/JPEG files (tests/support/test-images.ts) and hand-built GIF and WebP
 * (VP8X, VP8L, VP8) headers.
 */
import assert from "node:assert/strict";
import { sniffImage } from "../shared/images/sniff-image.ts";
import { makeJpeg, makeLargePng, makePng } from "./support/test-images.ts";

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const u16le = (value: number) => [value & 0xff, (value >> 8) & 0xff];
const u24le = (value: number) => [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff];
const u32le = (value: number) => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];

/** RIFF container around one chunk; `padTo` appends zero bytes (a bitstream stand-in). */
function riffWebp(fourcc: string, payload: number[], padTo = 0): Uint8Array {
  const chunk = concat(ascii(fourcc), u32le(payload.length), payload);
  const body = concat(ascii("WEBP"), chunk);
  const file = concat(ascii("RIFF"), u32le(body.length), body);
  return file.length >= padTo ? file : concat(file, new Uint8Array(padTo - file.length));
}

/** Extended format: flags, 3 reserved bytes, canvas width-1 and height-1 as 24-bit LE. */
function webpVp8x(width: number, height: number): Uint8Array {
  return riffWebp("VP8X", [0x10, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1)]);
}

/** Lossless: signature 0x2f, then 14 bits width-1, 14 bits height-1, alpha bit, 3-bit version. */
function webpVp8l(width: number, height: number): Uint8Array {
  const bits = ((width - 1) | ((height - 1) << 14) | (1 << 28)) >>> 0;
  return riffWebp("VP8L", [0x2f, ...u32le(bits), 0, 0, 0], 34);
}

/** Lossy: 3-byte frame tag, start code 9d 01 2a, 14-bit width and height (top 2 bits: scale). */
function webpVp8(width: number, height: number, scale = 0): Uint8Array {
  const payload = [0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, ...u16le(width | (scale << 14)), ...u16le(height | (scale << 14))];
  return riffWebp("VP8 ", [...payload, 0, 0], 34);
}

function gif(version: "87a" | "89a", width: number, height: number): Uint8Array {
  // Header, logical screen descriptor (size, flags, background, aspect), trailer.
  return concat(ascii(`GIF${version}`), u16le(width), u16le(height), [0, 0, 0], [0x3b]);
}

const u16be = (value: number) => [(value >> 8) & 0xff, value & 0xff];
/** A JPEG marker segment: ff, marker, big-endian length (including itself), payload. */
const segment = (marker: number, payload: number[]) => [0xff, marker, ...u16be(payload.length + 2), ...payload];

/**
 * A hand-built JPEG header: segments before the frame that a naive scanner could take for a
 * start-of-frame (DHT c4, JPG c8, DAC cc lie in c0..cf), fill bytes, then `sof` with the size.
 */
function jpegWithSegmentsBeforeFrame(sof: number, width: number, height: number, appBytes = 14): Uint8Array {
  return concat(
    [0xff, 0xd8],
    segment(0xe0, [...ascii("JFIF"), 0, ...new Array(appBytes - 5).fill(1)]),
    segment(0xc4, [0x00, ...new Array(16).fill(0)]), // DHT: 16 counts, no codes
    segment(0xcc, [0x00, 0x10]), // DAC
    segment(0xc8, [0x00, 0x00, 0x00]), // JPG (reserved)
    [0xff, 0xff, 0xff], // fill bytes before the next marker
    segment(sof, [8, ...u16be(height), ...u16be(width), 1, 1, 0x11, 0]),
    [0xff, 0xd9],
  );
}

interface Case {
  name: string;
  bytes: () => Uint8Array;
  format: string;
  width?: number;
  height?: number;
}

const RECOGNISED: Case[] = [
  { name: "a 1x1 PNG", bytes: () => makePng(1, 1), format: "png", width: 1, height: 1 },
  { name: "a 37x21 PNG", bytes: () => makePng(37, 21), format: "png", width: 37, height: 21 },
  { name: "a 300x7 PNG", bytes: () => makePng(300, 7), format: "png", width: 300, height: 7 },
  { name: "a 1 MB PNG (size from IHDR, not the file size)", bytes: () => makeLargePng(1_000_000), format: "png", width: 8, height: 8 },
  { name: "a 1x1 JPEG", bytes: () => makeJpeg(1, 1), format: "jpeg", width: 1, height: 1 },
  { name: "a 37x21 JPEG", bytes: () => makeJpeg(37, 21), format: "jpeg", width: 37, height: 21 },
  { name: "a 21x300 JPEG", bytes: () => makeJpeg(21, 300), format: "jpeg", width: 21, height: 300 },
  { name: "a baseline JPEG whose SOF0 follows DHT, DAC, JPG and fill bytes", bytes: () => jpegWithSegmentsBeforeFrame(0xc0, 4000, 3000), format: "jpeg", width: 4000, height: 3000 },
  { name: "a progressive JPEG (SOF2)", bytes: () => jpegWithSegmentsBeforeFrame(0xc2, 1234, 567), format: "jpeg", width: 1234, height: 567 },
  { name: "a JPEG whose SOF comes after a 60 KB APP segment", bytes: () => jpegWithSegmentsBeforeFrame(0xc1, 65535, 2, 60_000), format: "jpeg", width: 65535, height: 2 },
  { name: "a GIF87a", bytes: () => gif("87a", 320, 200), format: "gif", width: 320, height: 200 },
  { name: "a GIF89a", bytes: () => gif("89a", 513, 65535), format: "gif", width: 513, height: 65535 },
  { name: "a VP8X WebP 1x1", bytes: () => webpVp8x(1, 1), format: "webp", width: 1, height: 1 },
  { name: "a VP8X WebP 1920x1080", bytes: () => webpVp8x(1920, 1080), format: "webp", width: 1920, height: 1080 },
  // 24-bit fields: the third byte counts (70000 > 65535).
  { name: "a VP8X WebP 70000x3", bytes: () => webpVp8x(70000, 3), format: "webp", width: 70000, height: 3 },
  { name: "a VP8X WebP 3x16777216", bytes: () => webpVp8x(3, 16777216), format: "webp", width: 3, height: 16777216 },
  { name: "a VP8L WebP 1x1", bytes: () => webpVp8l(1, 1), format: "webp", width: 1, height: 1 },
  { name: "a VP8L WebP 400x300", bytes: () => webpVp8l(400, 300), format: "webp", width: 400, height: 300 },
  { name: "a VP8L WebP 16384x16384 (the maximum)", bytes: () => webpVp8l(16384, 16384), format: "webp", width: 16384, height: 16384 },
  { name: "a VP8L WebP 12345x678", bytes: () => webpVp8l(12345, 678), format: "webp", width: 12345, height: 678 },
  { name: "a VP8 (lossy) WebP 640x480", bytes: () => webpVp8(640, 480), format: "webp", width: 640, height: 480 },
  { name: "a VP8 WebP with scale bits set (they are not size)", bytes: () => webpVp8(1000, 16383, 3), format: "webp", width: 1000, height: 16383 },
];

for (const c of RECOGNISED) {
  Deno.test(`sniffImage() recognises ${c.name}`, () => {
    const sniffed = sniffImage(c.bytes());
    assert.ok(sniffed, "recognised");
    assert.equal(sniffed.format, c.format);
    assert.equal(sniffed.contentType, `image/${c.format}`);
    assert.equal(sniffed.width, c.width, "width");
    assert.equal(sniffed.height, c.height, "height");
  });
}

Deno.test("sniffImage() reads sizes from a view at a non-zero byteOffset", () => {
  const cases: [Uint8Array, string, number, number][] = [
    [makePng(37, 21), "png", 37, 21],
    [makeJpeg(21, 37), "jpeg", 21, 37],
    [gif("89a", 640, 480), "gif", 640, 480],
    [webpVp8x(1920, 1080), "webp", 1920, 1080],
    [webpVp8l(400, 300), "webp", 400, 300],
  ];
  for (const [image, format, width, height] of cases) {
    // Garbage before and after: only the view's own bytes may be read.
    const host = concat([0x89, 0x50, 0x4e, 0x47, 1, 2, 3], image, [0xff, 0xff, 0xff]);
    const view = host.subarray(7, 7 + image.length);
    assert.equal(view.byteOffset, 7);
    const sniffed = sniffImage(view);
    assert.equal(sniffed?.format, format);
    assert.equal(sniffed?.width, width, `${format} width`);
    assert.equal(sniffed?.height, height, `${format} height`);
  }
});

Deno.test("sniffImage() recognises a format even when the header is too short to hold the size", () => {
  const png = makePng(37, 21).subarray(0, 20); // signature + part of IHDR
  assert.deepEqual(sniffImage(png), { format: "png", contentType: "image/png" });
  assert.deepEqual(sniffImage(new Uint8Array(ascii("GIF89a"))), { format: "gif", contentType: "image/gif" });
  const jpeg = makeJpeg(37, 21);
  const sniffedJpeg = sniffImage(jpeg.subarray(0, 4));
  assert.equal(sniffedJpeg?.format, "jpeg");
  assert.equal(sniffedJpeg?.width, undefined);
  const webp = sniffImage(webpVp8x(10, 10).subarray(0, 16));
  assert.equal(webp?.format, "webp");
  assert.equal(webp?.width, undefined);
});

const REJECTED: [string, () => Uint8Array][] = [
  ["empty input", () => new Uint8Array(0)],
  ["plain text", () => new TextEncoder().encode("just some text, not a picture")],
  ["a PDF", () => new TextEncoder().encode("%PDF-1.7\n%âãÏÓ\n1 0 obj << /Type /Catalog >> endobj")],
  ["JSON", () => new TextEncoder().encode('{"prompt":"a cat"}')],
  ["an SVG (text, not a raster format BFL takes)", () => new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>')],
  ["a BMP", () => concat(ascii("BM"), new Uint8Array(60))],
  ["a PNG signature cut to 7 bytes", () => makePng(8, 8).subarray(0, 7)],
  ["a PNG signature with one wrong byte", () => concat([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x00], new Uint8Array(20))],
  ["a JPEG signature cut to 2 bytes", () => new Uint8Array([0xff, 0xd8])],
  ["a single 0xff byte", () => new Uint8Array([0xff])],
  ["a GIF signature cut to 5 bytes", () => new Uint8Array(ascii("GIF89"))],
  ["an unknown GIF version (GIF88a)", () => concat(ascii("GIF88a"), u16le(1), u16le(1))],
  ["RIFF without the WEBP form type (a WAV)", () => concat(ascii("RIFF"), u32le(36), ascii("WAVEfmt "), new Uint8Array(24))],
  ["RIFF cut before the form type", () => concat(ascii("RIFF"), u32le(36), ascii("WEB"))],
  ["WEBP without RIFF", () => concat(ascii("RIFX"), u32le(22), ascii("WEBPVP8X"), new Uint8Array(14))],
  ["a PNG signature at offset 1", () => concat([0], makePng(8, 8))],
];

for (const [name, bytes] of REJECTED) {
  Deno.test(`sniffImage() rejects ${name}`, () => {
    assert.equal(sniffImage(bytes()), null);
  });
}
