/**
 * Child process of the benchmark run: times every base64 codec (bench/lib/base64-codecs.ts) at
 * 64 KB, 1 MB and 20 MB on the same random bytes, checks each one's output against node:buffer,
 * and prints one JSON line. Run with `--v8-flags=--expose-gc` (a full GC between codecs keeps one
 * codec's garbage from being billed to the next) and `--no-lock`.
 *
 *   deno run --no-lock --v8-flags=--expose-gc -A bench/lib/codec-compare.ts [--quick]
 *
 * @module
 */
import { loadCodecs, randomBytes } from "./base64-codecs.ts";
import { median } from "./stats.ts";

const quick = Deno.args.includes("--quick");
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

export interface CodecTiming {
  codec: string;
  chosen: boolean;
  size: string;
  bytes: number;
  /** Median time per encode. */
  ms: number;
  mbPerS: number;
  samples: number;
  correct: boolean;
}

function measure(
  fn: () => void,
  budgetMs: number,
  minSamples: number,
): { perOp: number; samples: number } {
  // The caller's correctness check was the warm-up; this first timed run is the first sample.
  const t0 = performance.now();
  fn();
  const once = Math.max(performance.now() - t0, 0.001);
  const perOp: number[] = [once];
  // Codecs that take seconds per call get only one more sample, so the run stays short.
  const wanted = once > 1000 ? Math.min(minSamples, 2) : minSamples;
  const batch = Math.max(1, Math.ceil(2 / once)); // batches of at least ~2 ms
  const started = performance.now();
  while (perOp.length < wanted || (once < 1000 && performance.now() - started < budgetMs)) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) fn();
    perOp.push((performance.now() - start) / batch);
    if (perOp.length >= 200) break;
  }
  return { perOp: median(perOp), samples: perOp.length };
}

const { codecs, skipped } = await loadCodecs();
const sizes: [string, number, number, number][] = [
  // label, bytes, time budget per codec (ms), minimum samples
  ["64 KB", 64 * 1024, quick ? 100 : 400, 10],
  ["1 MB", 1024 * 1024, quick ? 150 : 600, 8],
  ["20 MB", 20 * 1024 * 1024, quick ? 0 : 1500, quick ? 2 : 5],
];
const timings: CodecTiming[] = [];
for (const [label, size, budget, minSamples] of sizes) {
  const bytes = randomBytes(size);
  const expected = codecs.find((c) => c.chosen)!.encode(bytes);
  for (const codec of codecs) {
    gc();
    const correct = codec.encode(bytes) === expected;
    gc();
    const { perOp, samples } = measure(() => void codec.encode(bytes), budget, minSamples);
    timings.push({
      codec: codec.name,
      chosen: Boolean(codec.chosen),
      size: label,
      bytes: size,
      ms: perOp,
      mbPerS: size / (1024 * 1024) / (perOp / 1000),
      samples,
      correct,
    });
  }
}
console.log(`CODECS_JSON ${JSON.stringify({ timings, skipped })}`);
