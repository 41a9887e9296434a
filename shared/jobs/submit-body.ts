/**
 * Builds the JSON body BFL receives for a job: the stored parameters plus each input image, read
 * back from storage and base64-encoded (or the caller's URL, which BFL fetches itself).
 *
 * The body is a Blob of parts, so it has a known length (no chunked upload) while a 20 MB image
 * is never one giant string: the image is read as a stream and encoded 3 MiB at a time, each
 * piece moved into the Blob at once. Base64 never needs JSON escaping, so it is spliced between
 * quotes as is.
 *
 * @module
 */
import { encodeBase64 } from "../images/base64.ts";
import { type ImageBody, imageBodyFromBytes } from "../images/image-body.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import type { JobRow } from "./job-row.ts";

/** Bytes encoded per piece: a multiple of 3, so the pieces' base64 concatenates without padding. */
const PIECE_BYTES = 3 * 1024 * 1024;

export async function buildSubmitBody(
  job: JobRow,
  storage: ImageStorage,
  webhook?: { url: string; secret: string },
  /** Inputs the create request still holds, by storage path (a fresh upload): not read back. */
  uploaded?: ReadonlyMap<string, ImageBody>,
): Promise<Blob> {
  const scalars: Record<string, unknown> = { ...job.params };
  if (webhook) {
    scalars.webhook_url = webhook.url;
    scalars.webhook_secret = webhook.secret;
  }
  const parts: BlobPart[] = [JSON.stringify(scalars).slice(0, -1)];
  for (const input of job.inputs) {
    if (input.kind === "url") {
      parts.push(`,${JSON.stringify(input.slot)}:${JSON.stringify(input.url)}`);
      continue;
    }
    // Uploads and earlier jobs' outputs both live in storage.
    let body = uploaded?.get(input.path);
    if (!body) {
      const stored = await storage.get(input.path);
      if (!stored) throw new Error(`Cannot submit job ${job.id}: its ${input.slot} is missing from storage`);
      body = imageBodyFromBytes(stored.bytes);
    }
    parts.push(`,${JSON.stringify(input.slot)}:"`, await base64Blob(body), `"`);
  }
  parts.push("}");
  return new Blob(parts, { type: "application/json" });
}

/** The image's base64 as a Blob, encoded piece by piece from its stream. */
async function base64Blob(body: ImageBody): Promise<Blob> {
  const pieces: Blob[] = [];
  // A small image needs no 3 MiB buffer; the piece size stays a multiple of 3 either way.
  const piece = new Uint8Array(Math.min(PIECE_BYTES, Math.ceil(body.size / 3) * 3 || 3));
  let filled = 0;
  for await (const chunk of body.stream()) {
    for (let offset = 0; offset < chunk.byteLength;) {
      const take = Math.min(piece.byteLength - filled, chunk.byteLength - offset);
      piece.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === piece.byteLength) {
        pieces.push(new Blob([encodeBase64(piece)]));
        filled = 0;
      }
    }
  }
  if (filled > 0) pieces.push(new Blob([encodeBase64(piece.subarray(0, filled))]));
  return new Blob(pieces);
}
