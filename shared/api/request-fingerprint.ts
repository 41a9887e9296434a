/**
 * A fingerprint of a validated create request — parameters plus a digest of each image — so an
 * Idempotency-Key can tell a retry of the same request from a different request reusing the key.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ResolvedImages } from "../jobs/job-service.ts";
import type { CreateJobRequest } from "./job-schemas.ts";
import { IMAGE_SLOTS } from "../jobs/models.ts";

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function requestFingerprint(request: CreateJobRequest, images: ResolvedImages): string {
  const fields: Record<string, unknown> = { ...request };
  for (const slot of IMAGE_SLOTS) {
    const image = images[slot];
    fields[slot] = !image
      ? undefined
      : image.kind === "url"
      ? { url: image.url }
      : image.kind === "job"
      ? { job: image.jobId }
      : { sha256: image.body.sha256() };
  }
  return createHash("sha256").update(canonical(fields)).digest("hex");
}
