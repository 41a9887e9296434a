/**
 * Builds the JSON body BFL receives for a job: the stored parameters plus each input image, read
 * back from storage and base64-encoded (or the caller's URL, which BFL fetches itself).
 *
 * The body is assembled as a Blob of parts so a 20 MB image is not copied into one more giant
 * string: base64 never needs JSON escaping, so it can be spliced between quotes as is.
 *
 * @module
 */
import { encodeBase64 } from "../images/base64.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import type { JobRow } from "./job-row.ts";

export async function buildSubmitBody(
  job: JobRow,
  storage: ImageStorage,
  webhook?: { url: string; secret: string },
  /** Bytes already in memory by storage path (a fresh upload), so they are not read back. */
  inMemory?: ReadonlyMap<string, Uint8Array>,
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
    const bytes = inMemory?.get(input.path) ?? (await storage.get(input.path))?.bytes;
    if (!bytes) throw new Error(`Cannot submit job ${job.id}: its ${input.slot} is missing from storage`);
    parts.push(`,${JSON.stringify(input.slot)}:"`, encodeBase64(bytes), `"`);
  }
  parts.push("}");
  return new Blob(parts, { type: "application/json" });
}
