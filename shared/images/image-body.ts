/**
 * An input image's bytes, wherever they are held: in memory (decoded from base64 JSON, or read
 * back from storage) or spooled to a temporary file (a multipart upload, see spool-image.ts).
 * Consumers read them as a stream, so a 20 MB upload never has to be in memory as a whole.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The leading bytes kept in memory for sniffing: the format and, nearly always, the pixel size. */
export const IMAGE_HEAD_BYTES = 256 * 1024;

export interface ImageBody {
  readonly size: number;
  /** Up to IMAGE_HEAD_BYTES leading bytes. */
  readonly head: Uint8Array;
  /** Hex SHA-256 of the bytes (for idempotency fingerprints). */
  sha256(): string;
  /** A fresh stream of the bytes, from the start, on every call. */
  stream(): ReadableStream<Uint8Array>;
  /** Frees what holds the bytes (deletes a spool file); safe to call more than once. */
  dispose(): Promise<void>;
}

const STREAM_CHUNK = 1024 * 1024;

/** An ImageBody over bytes already in memory (streamed as views: nothing is copied). */
export function imageBodyFromBytes(bytes: Uint8Array): ImageBody {
  let digest: string | undefined;
  return {
    size: bytes.byteLength,
    head: bytes.subarray(0, IMAGE_HEAD_BYTES),
    sha256: () => (digest ??= createHash("sha256").update(bytes).digest("hex")),
    stream() {
      let offset = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.byteLength) return controller.close();
          controller.enqueue(bytes.subarray(offset, offset + STREAM_CHUNK));
          offset += STREAM_CHUNK;
        },
      });
    },
    dispose: () => Promise.resolve(),
  };
}
