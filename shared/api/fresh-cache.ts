/**
 * A bounded in-process cache of values that go stale at a known time: reused until `freshUntil`,
 * rebuilt after; at most `maxEntries` kept, the oldest dropped first. Signed URLs and the views
 * that embed them (SignedUrlCache, FinishedViewCache) both build on it.
 *
 * @module
 */
export class FreshCache<V> {
  #entries = new Map<string, { value: V; freshUntil: number }>();
  constructor(private readonly maxEntries = 10_000) {}

  async get(key: string, build: () => Promise<{ value: V; freshUntil: number }>): Promise<V> {
    const cached = this.#entries.get(key);
    if (cached && cached.freshUntil > Date.now()) return cached.value;
    const fresh = await build();
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, fresh);
    return fresh.value;
  }
}
