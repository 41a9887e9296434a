/**
 * A streaming multipart/form-data parser (RFC 7578): it hands each part's bytes to a sink as
 * they arrive, so a caller can spool a 20 MB file to disk instead of buffering the whole body as
 * `request.formData()` does. Only what multipart/form-data uses is supported: a
 * `Content-Disposition: form-data; name=…` per part, an optional `filename` and `Content-Type`.
 * A malformed body is an ApiError 400 `invalid_body`; errors thrown by `onPart` or a sink
 * (a field's own 4xx) stop the parse and propagate as they are.
 *
 * @module
 */
import { ApiError } from "./api-error.ts";

export interface MultipartPart {
  name: string;
  /** Present when the part is a file (even an empty file name). */
  filename?: string;
  contentType?: string;
}

export interface PartSink {
  write(chunk: Uint8Array): void | Promise<void>;
  /** Called once the part's last byte has been written. */
  close(): void | Promise<void>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const encoder = new TextEncoder();
const CRLFCRLF = encoder.encode("\r\n\r\n");

const malformed = (why: string) => new ApiError(400, "invalid_body", `Cannot read the multipart body: ${why}`);

/** The `boundary` parameter of a multipart Content-Type, or null when absent or invalid. */
export function multipartBoundary(contentType: string): string | null {
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))\s*(?:;|$)/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : null;
}

export async function parseMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  onPart: (part: MultipartPart) => PartSink | Promise<PartSink>,
): Promise<void> {
  // Every delimiter but the first is preceded by CRLF; starting the buffer with one makes the
  // first look like the others.
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  const reader = body.getReader();
  let buffer = encoder.encode("\r\n");
  let state: "preamble" | "headers" | "body" = "preamble";
  let sink: PartSink | null = null;
  try {
    while (true) {
      // Consume as much of the buffer as possible, then read more.
      let progressed = true;
      while (progressed) {
        progressed = false;
        if (state === "headers") {
          const end = buffer[0] === 13 && buffer[1] === 10 ? 0 : indexOf(buffer, CRLFCRLF);
          if (end > MAX_HEADER_BYTES || (end < 0 && buffer.byteLength > MAX_HEADER_BYTES)) {
            throw malformed("a part's headers are too long");
          }
          if (end < 0) break;
          const part = parsePartHeaders(new TextDecoder().decode(buffer.subarray(0, end)));
          buffer = buffer.subarray(end === 0 ? 2 : end + 4);
          sink = await onPart(part);
          state = "body";
          progressed = true;
          continue;
        }
        const at = indexOf(buffer, delimiter);
        if (at < 0) {
          // Keep a tail that could be the start of a delimiter split across reads.
          const safe = buffer.byteLength - (delimiter.byteLength - 1);
          if (safe > 0) {
            if (sink) await sink.write(buffer.subarray(0, safe));
            buffer = buffer.subarray(safe);
          }
          break;
        }
        // What follows the delimiter: "--" ends the body; otherwise optional padding and CRLF.
        const lineEnd = indexOf(buffer, CRLFCRLF.subarray(0, 2), at + delimiter.byteLength);
        const isLast = buffer[at + delimiter.byteLength] === 45 && buffer[at + delimiter.byteLength + 1] === 45;
        if (!isLast && lineEnd < 0) {
          if (buffer.byteLength - at > delimiter.byteLength + 256) throw malformed("a boundary line is not terminated");
          break;
        }
        if (sink) {
          if (at > 0) await sink.write(buffer.subarray(0, at));
          await sink.close();
          sink = null;
        }
        if (isLast) {
          if (state === "preamble") throw malformed("it has no parts");
          return;
        }
        const padding = new TextDecoder().decode(buffer.subarray(at + delimiter.byteLength, lineEnd));
        if (!/^[ \t]*$/.test(padding)) {
          // The "delimiter" was data that happens to start like one: not allowed inside a part.
          throw malformed("a boundary line has trailing characters");
        }
        buffer = buffer.subarray(lineEnd + 2);
        state = "headers";
        progressed = true;
      }
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (error) {
        // A body limit's 413 passes through; anything else is the client's upload breaking off.
        if (error instanceof ApiError) throw error;
        throw malformed("the upload was interrupted");
      }
      const { value, done } = read;
      if (done) throw malformed("it ends before the closing boundary");
      buffer = concat(buffer, value);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parsePartHeaders(text: string): MultipartPart {
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("a part header has no name");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-disposition") disposition = value;
    else if (name === "content-type") contentType = value;
  }
  if (!disposition || !/^form-data\s*(;|$)/i.test(disposition)) {
    throw malformed("a part has no Content-Disposition: form-data header");
  }
  const params = new Map<string, string>();
  for (const match of disposition.matchAll(/;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/g)) {
    params.set(match[1].toLowerCase(), match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : match[3]);
  }
  const name = params.get("name");
  if (!name) throw malformed("a part has no field name");
  return { name, filename: params.get("filename"), contentType };
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  const last = haystack.byteLength - needle.byteLength;
  for (let i = haystack.indexOf(first, from); i >= 0 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.byteLength && haystack[i + j] === needle[j]) j++;
    if (j === needle.byteLength) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a);
  joined.set(b, a.byteLength);
  return joined;
}
