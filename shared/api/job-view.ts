/**
 * A stored job as its owner sees it: no provider task id, polling URL, webhook secret or lease,
 * and the image only as a time-limited URL to our stored copy (never BFL's sample URL).
 *
 * @module
 */
import type { JobRow } from "../jobs/job-row.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import { FreshCache } from "./fresh-cache.ts";
import type { JobView } from "./job-schemas.ts";

/**
 * Signed download URLs, reused while more than half their lifetime is left: signing is a network
 * call on Supabase Storage, and a client polling a finished job should not pay it every time.
 */
export class SignedUrlCache {
  #urls: FreshCache<{ url: string; expiresAt: number }>;
  constructor(maxEntries = 10_000) {
    this.#urls = new FreshCache(maxEntries);
  }

  get(path: string, ttlSeconds: number, sign: () => Promise<string>): Promise<{ url: string; expiresAt: number }> {
    return this.#urls.get(path, async () => {
      const expiresAt = Date.now() + ttlSeconds * 1000;
      return { value: { url: await sign(), expiresAt }, freshUntil: expiresAt - (ttlSeconds * 1000) / 2 };
    });
  }
}

export interface JobViewOptions {
  /** Reuses signed URLs across reads (optional). */
  urlCache?: SignedUrlCache;
  storage: ImageStorage;
  /** The API's public base, e.g. http://localhost:8000/images. */
  apiBaseUrl: string;
  /** How long image download URLs stay valid. */
  imageUrlTtlSeconds: number;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export async function toJobView(job: JobRow, options: JobViewOptions): Promise<JobView> {
  let image: JobView["image"] = null;
  if (job.status === "succeeded" && job.result_path) {
    const path = job.result_path;
    const sign = () => options.storage.signedUrl(path, options.imageUrlTtlSeconds, options.apiBaseUrl);
    const signed = options.urlCache
      ? await options.urlCache.get(`${options.apiBaseUrl} ${path}`, options.imageUrlTtlSeconds, sign)
      : { url: await sign(), expiresAt: Date.now() + options.imageUrlTtlSeconds * 1000 };
    image = {
      url: signed.url,
      content_type: job.result_content_type ?? "application/octet-stream",
      bytes: job.result_bytes ?? 0,
      expires_at: new Date(signed.expiresAt).toISOString(),
    };
  }
  return {
    id: job.id,
    model: job.model,
    status: job.status,
    prompt: String(job.params.prompt ?? ""),
    params: job.params,
    inputs: job.inputs.map((input) =>
      input.kind === "url"
        ? { slot: input.slot, kind: "url" as const, url: input.url }
        : input.kind === "job"
        ? { slot: input.slot, kind: "job" as const, job_id: input.job_id, content_type: input.content_type, bytes: input.bytes }
        : { slot: input.slot, kind: "upload" as const, content_type: input.content_type, bytes: input.bytes }
    ),
    error: job.error_code
      ? { code: job.error_code, message: job.error_message ?? "", ...(job.error_details ? { details: job.error_details } : {}) }
      : null,
    provider: { status: job.provider_status, cost: job.cost, input_mp: job.input_mp, output_mp: job.output_mp },
    image,
    parent_job_id: job.parent_job_id,
    created_at: job.created_at.toISOString(),
    updated_at: job.updated_at.toISOString(),
    submitted_at: iso(job.submitted_at),
    finished_at: iso(job.finished_at),
    links: { self: `${options.apiBaseUrl}/jobs/${job.id}` },
  };
}
