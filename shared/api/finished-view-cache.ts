/**
 * The serialised views of finished jobs, for clients that keep polling a job after it finished.
 * A finished job never changes, so its JSON is built once and reused; only the signed image URL
 * inside it ages, so a cached body is reused only while its URL has more than half of its
 * lifetime left (the same rule as SignedUrlCache). Keyed by the API base too, since links are absolute. Only the job's
 * owner reaches a lookup (JobService.get checks that first).
 *
 * @module
 */
import { FreshCache } from "./fresh-cache.ts";
import type { JobView } from "./job-schemas.ts";

export class FinishedViewCache {
  #bodies: FreshCache<string>;
  constructor(private readonly urlTtlSeconds: number, maxEntries = 10_000) {
    this.#bodies = new FreshCache(maxEntries);
  }

  get(key: string, build: () => Promise<JobView>): Promise<string> {
    return this.#bodies.get(key, async () => {
      const view = await build();
      const freshUntil = view.image
        ? Date.parse(view.image.expires_at) - (this.urlTtlSeconds * 1000) / 2
        : Number.POSITIVE_INFINITY;
      return { value: JSON.stringify(view), freshUntil };
    });
  }
}
