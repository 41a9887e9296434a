/**
 * Base64 encoders available on Deno 2.1 (V8 13.0: no Uint8Array.prototype.toBase64), compared
 * with the one shared/images/base64.ts uses:
 *
 * - `node:buffer` — Buffer#toString("base64"), native (the service's choice);
 * - a chunked pure-TypeScript encoder (12-bit lookup table into a byte buffer, one TextDecoder
 *   call per 768 KiB chunk);
 * - chunked `btoa(String.fromCharCode.apply(null, chunk))` (32,766-byte chunks: a multiple of 3,
 *   and few enough arguments for `apply`);
 * - npm packages: base64-js, js-base64, base64-arraybuffer. @std/encoding (Deno's standard
 *   library) is published on JSR only — `npm view @std/encoding` answers 404 and JSR is not
 *   reachable here — so it is not among them; the pure-TypeScript encoder above stands for
 *   that kind of code.
 *
 * The npm packages are imported dynamically from specifiers that type checking does not follow,
 * so `deno check` never adds them to deno.lock; the benchmark runs them with `--no-lock`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { encodeBase64 } from "../../shared/images/base64.ts";

export interface Codec {
  name: string;
  encode(bytes: Uint8Array): string;
  /** The service's choice (shared/images/base64.ts). */
  chosen?: boolean;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** 4096 entries: the two base64 characters (as bytes) for every 12-bit value. */
const PAIRS = (() => {
  const table = new Uint16Array(4096);
  for (let i = 0; i < 4096; i++) {
    // Little-endian: the first character in the low byte.
    table[i] = ALPHABET.charCodeAt(i >> 6) | (ALPHABET.charCodeAt(i & 63) << 8);
  }
  return table;
})();
const ascii = new TextDecoder("latin1");
const PURE_CHUNK = 3 * 256 * 1024;

/** Pure TypeScript, chunked: never holds more than one chunk's bytes besides the result. */
export function encodePureTs(bytes: Uint8Array): string {
  const parts: string[] = [];
  const out = new Uint8Array((Math.min(bytes.length, PURE_CHUNK) / 3 + 1) * 4);
  const out16 = new Uint16Array(out.buffer, 0, out.length >> 1);
  for (let start = 0; start < bytes.length; start += PURE_CHUNK) {
    const end = Math.min(bytes.length, start + PURE_CHUNK);
    const whole = start + Math.floor((end - start) / 3) * 3;
    let o = 0;
    for (let i = start; i < whole; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out16[o++] = PAIRS[n >> 12];
      out16[o++] = PAIRS[n & 0xfff];
    }
    let length = o * 2;
    const rest = end - whole;
    if (rest > 0) {
      const b0 = bytes[whole];
      const b1 = rest === 2 ? bytes[whole + 1] : 0;
      out[length++] = ALPHABET.charCodeAt(b0 >> 2);
      out[length++] = ALPHABET.charCodeAt(((b0 & 3) << 4) | (b1 >> 4));
      out[length++] = rest === 2 ? ALPHABET.charCodeAt((b1 & 15) << 2) : 61;
      out[length++] = 61;
    }
    parts.push(ascii.decode(out.subarray(0, length)));
  }
  return parts.join("");
}

const BTOA_CHUNK = 32_766;

/** btoa over String.fromCharCode.apply, chunk by chunk (a whole-buffer apply overflows the stack). */
export function encodeBtoaChunked(bytes: Uint8Array): string {
  const parts: string[] = [];
  for (let start = 0; start < bytes.length; start += BTOA_CHUNK) {
    const chunk = bytes.subarray(start, start + BTOA_CHUNK);
    parts.push(btoa(String.fromCharCode.apply(null, chunk as unknown as number[])));
  }
  return parts.join("");
}

/** Node's Buffer directly, as the service does. */
export function encodeNodeBuffer(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** npm packages compared, pinned to exact versions. */
export const NPM_CODECS = {
  "base64-js": "npm:base64-js@1.5.1",
  "js-base64": "npm:js-base64@3.9.6",
  "base64-arraybuffer": "npm:base64-arraybuffer@1.0.2",
} as const;

interface Base64Js {
  fromByteArray(bytes: Uint8Array): string;
}
interface JsBase64 {
  fromUint8Array(bytes: Uint8Array): string;
}
interface Base64ArrayBuffer {
  encode(buffer: ArrayBuffer): string;
}

// deno-lint-ignore no-explicit-any
async function importNpm(name: keyof typeof NPM_CODECS): Promise<any> {
  const specifier: string = NPM_CODECS[name];
  // deno-lint-ignore no-explicit-any
  const module: any = await import(specifier);
  return module.default ?? module;
}

/** Every codec; npm ones are skipped (with a reason) when they cannot be loaded. */
export async function loadCodecs(
  options: { npm?: boolean } = {},
): Promise<{ codecs: Codec[]; skipped: string[] }> {
  const codecs: Codec[] = [
    { name: "node:buffer (shared/images/base64.ts)", encode: encodeBase64, chosen: true },
    { name: "pure TypeScript, chunked", encode: encodePureTs },
    { name: "btoa(String.fromCharCode.apply), chunked", encode: encodeBtoaChunked },
  ];
  const skipped: string[] = [];
  if (options.npm ?? true) {
    try {
      const lib: Base64Js = await importNpm("base64-js");
      codecs.push({ name: `${NPM_CODECS["base64-js"]}`, encode: (b) => lib.fromByteArray(b) });
    } catch (error) {
      skipped.push(`base64-js: ${(error as Error).message}`);
    }
    try {
      const lib: JsBase64 = await importNpm("js-base64");
      const named = (lib as unknown as { Base64?: JsBase64 }).Base64 ?? lib;
      codecs.push({ name: `${NPM_CODECS["js-base64"]}`, encode: (b) => named.fromUint8Array(b) });
    } catch (error) {
      skipped.push(`js-base64: ${(error as Error).message}`);
    }
    try {
      const lib: Base64ArrayBuffer = await importNpm("base64-arraybuffer");
      codecs.push({
        name: `${NPM_CODECS["base64-arraybuffer"]}`,
        encode: (b) =>
          lib.encode(
            b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
              ? b.buffer as ArrayBuffer
              : b.slice().buffer,
          ),
      });
    } catch (error) {
      skipped.push(`base64-arraybuffer: ${(error as Error).message}`);
    }
  }
  return { codecs, skipped };
}

/** Deterministic pseudo-random bytes (incompressible, like image data). */
export function randomBytes(length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}
