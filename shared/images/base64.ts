/**
 * Base64 for image payloads of up to tens of megabytes.
 *
 * `btoa(String.fromCharCode(...bytes))` overflows the call stack above ~100 KB, and
 * `Uint8Array.prototype.toBase64` does not exist on the Edge Runtime's V8 13.0. `node:buffer`
 * is built into Deno 2.1 (and so into the Edge Runtime), encodes natively in one pass and was the
 * fastest codec measured (see bench/base64.bench.ts), so it is the one used here.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Encodes bytes as standard base64 (with padding, no line breaks). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

const BASE64_SHAPE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard base64 strictly: `Buffer.from(s, "base64")` silently skips characters it does
 * not know, which would turn a typo into a corrupt image, so the shape is checked first.
 * Returns null when the text is not valid base64.
 */
export function decodeBase64(text: string): Uint8Array | null {
  // Line-wrapped base64 (as some encoders emit) is fine; the line breaks are not data.
  const compact = text.replace(/\s+/g, "");
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64_SHAPE.test(compact)) return null;
  const buffer = Buffer.from(compact, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** The number of bytes `text` decodes to, without decoding it (for early size checks). */
export function decodedBase64Length(text: string): number {
  const compact = /\s/.test(text) ? text.replace(/\s+/g, "") : text;
  const padding = compact.endsWith("==") ? 2 : compact.endsWith("=") ? 1 : 0;
  return Math.floor((compact.length * 3) / 4) - padding;
}
