/**
 * The serialised views of finished jobs, for clients that keep polling a job after it finished.
 * A finished job never changes, so its JSON is built once and reused; only the signed image URL
 * inside it ages, so a cached body is reused only while its URL has more than half of its
 * lifetime left (the same rule as SignedUrlCache). Keyed by the API base too, since links are absolute. Only the job's
 * owner reaches a lookup (JobService.get checks that first).
 *
 * @module
 */
import type { JobView } from "./job-schemas.ts";

export class FinishedViewCache {
  #bodies = new Map<string, { body: string; freshUntil: number }>();
  constructor(private readonly urlTtlSeconds: number, private readonly maxEntries = 10_000) {}

  async get(key: string, build: () => Promise<JobView>): Promise<string> {
    const cached = this.#bodies.get(key);
    if (cached && cached.freshUntil > Date.now()) return cached.body;
    const view = await build();
    const body = JSON.stringify(view);
    const freshUntil = view.image
      ? Date.parse(view.image.expires_at) - (this.urlTtlSeconds * 1000) / 2
      : Number.POSITIVE_INFINITY;
    if (this.#bodies.size >= this.maxEntries) this.#bodies.delete(this.#bodies.keys().next().value!);
    this.#bodies.set(key, { body, freshUntil });
    return body;
  }
}
