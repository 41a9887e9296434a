// Finished jobs' views are serialised once and reused, but never past half the lifetime of the
// signed image URL inside them.
import assert from "node:assert/strict";
import { FinishedViewCache } from "../shared/api/finished-view-cache.ts";
import type { JobView } from "../shared/api/job-schemas.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function viewExpiringIn(ms: number | null, tag: string): JobView {
  return {
    id: tag,
    image: ms === null ? null : { url: `https://x/${tag}`, content_type: "image/png", bytes: 1, expires_at: new Date(Date.now() + ms).toISOString() },
  } as unknown as JobView;
}

Deno.test("FinishedViewCache reuses a body only while its image URL has more than half its lifetime left", async () => {
  const cache = new FinishedViewCache(1);
  let builds = 0;
  const build = () => Promise.resolve(viewExpiringIn(1000, `v${++builds}`));
  const first = await cache.get("k", build);
  assert.equal(JSON.parse(first).id, "v1");
  assert.equal(await cache.get("k", build), first, "reused");
  assert.equal(builds, 1);
  await sleep(600); // past half of 1 s
  const second = await cache.get("k", build);
  assert.equal(JSON.parse(second).id, "v2", "rebuilt with a fresh URL");
  assert.equal(JSON.parse(await cache.get("other", build)).id, "v3", "keys are separate");
  // A URL already at half its lifetime (as SignedUrlCache may hand out) is not cached at all.
  const halfGone = () => Promise.resolve(viewExpiringIn(500, `h${++builds}`));
  const a = await cache.get("half", halfGone);
  assert.notEqual(await cache.get("half", halfGone), a);
});

Deno.test("FinishedViewCache keeps a view without an image, and stays bounded", async () => {
  const cache = new FinishedViewCache(3600, 2);
  let builds = 0;
  const build = () => Promise.resolve(viewExpiringIn(null, `v${++builds}`));
  await cache.get("a", build);
  await cache.get("a", build);
  assert.equal(builds, 1);
  await cache.get("b", build);
  await cache.get("c", build); // evicts the oldest, "a"
  await cache.get("a", build);
  assert.equal(builds, 4);
});
