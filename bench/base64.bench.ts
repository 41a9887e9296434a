/**
 * `deno bench` view of the base64 codec comparison (the benchmark run uses
 * bench/lib/codec-compare.ts, which reports the same codecs as ratios in bench/RESULTS.md):
 *
 *   ./scripts/deno.sh bench --no-lock -A bench/base64.bench.ts
 *
 * @module
 */
import { loadCodecs, randomBytes } from "./lib/base64-codecs.ts";

const { codecs, skipped } = await loadCodecs();
for (const reason of skipped) console.error(`skipped ${reason}`);

for (
  const [label, size] of [["64 KB", 64 * 1024], ["1 MB", 1024 * 1024], [
    "20 MB",
    20 * 1024 * 1024,
  ]] as const
) {
  const bytes = randomBytes(size);
  for (const codec of codecs) {
    Deno.bench({
      name: `${codec.name} ${label}`,
      group: label,
      baseline: codec.chosen,
      fn: () => {
        codec.encode(bytes);
      },
    });
  }
}
