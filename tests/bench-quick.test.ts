/**
 * The benchmarks' own checks (bench/, issue #5).
 *
 * Always: the helpers the figures rest on — percentiles, every base64 codec compared against
 * node:buffer's output, the wrk Lua script, the Markdown rendering (which keeps the hand-written
 * analysis across runs), the bare app's answer.
 *
 * In CI (CI=true, as .ci/run sets it) or with BENCH_QUICK=1: the whole `deno task bench --quick`
 * in a child process, into a temporary file; it must run every figure without an error. Missed
 * targets are findings reported in the file, not failures of this test. It takes a few minutes,
 * installs wrk with apt-get when missing, and needs PostgreSQL's server binaries like the other
 * tests on a real database.
 */
import assert from "node:assert/strict";
import { encodeBase64 } from "../shared/images/base64.ts";
import { encodeBtoaChunked, encodePureTs, randomBytes } from "../bench/lib/base64-codecs.ts";
import { bareApp, JOB } from "../bench/lib/bare-app.ts";
import { extractAnalysis, newSection, renderResults } from "../bench/lib/report.ts";
import { percentile, summarize } from "../bench/lib/stats.ts";

Deno.test("bench: percentiles interpolate between closest ranks", () => {
  assert.equal(percentile([1, 2, 3, 4, 5], 50), 3);
  assert.equal(percentile([5, 1, 4, 2, 3], 0), 1);
  assert.equal(percentile([1, 2, 3, 4, 5], 100), 5);
  assert.equal(percentile([10, 20], 50), 15);
  assert.ok(Number.isNaN(percentile([], 50)));
  const s = summarize(Array.from({ length: 101 }, (_, i) => i));
  assert.equal(s.p50, 50);
  assert.equal(s.p99, 99);
  assert.equal(s.max, 100);
});

Deno.test("bench: the alternative base64 encoders agree with node:buffer at every length mod 3", () => {
  for (
    const length of [0, 1, 2, 3, 4, 5, 32_766, 32_767, 32_768, 786_431, 786_432, 786_433, 1_000_001]
  ) {
    const bytes = randomBytes(length, length + 1);
    const expected = encodeBase64(bytes);
    assert.equal(encodePureTs(bytes), expected, `pure TypeScript, ${length} bytes`);
    assert.equal(encodeBtoaChunked(bytes), expected, `chunked btoa, ${length} bytes`);
  }
  // Offsets into a larger buffer (subarrays) are honoured.
  const whole = randomBytes(1000, 3);
  assert.equal(encodePureTs(whole.subarray(7, 500)), encodeBase64(whole.subarray(7, 500)));
});

Deno.test("bench: the bare app answers the constant job view", async () => {
  const response = await bareApp.fetch(new Request("http://127.0.0.1/images/jobs/anything"));
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), JOB);
});

Deno.test("bench: RESULTS.md rendering keeps the hand-written analysis", () => {
  const section = newSection("x", "9. Example", "./scripts/deno.sh task bench --only=x");
  section.rows.push({
    metric: "a | b",
    value: "1 ms",
    baseline: "2 ms",
    ratio: "0.50×",
    target: "≤ 1×",
    result: "PASS",
  });
  section.rows.push({
    metric: "c",
    value: "3 ms",
    baseline: "1 ms",
    ratio: "3.00×",
    target: "≤ 2×",
    result: "FAIL",
  });
  const meta = {
    date: "2030-01-01",
    denoVersion: "2.1.4",
    v8Version: "13.0",
    machine: "test",
    loadavg: "0",
    command: "x",
    quick: true,
    wallSeconds: 1,
    code: "abc1234",
    loadGenerator: "wrk",
  };
  const first = renderResults(meta, [section]);
  assert.match(first, /1 targets met, 1 missed/);
  assert.match(first, /\| a \\\| b \| 1 ms \| 2 ms \| 0\.50× \| ≤ 1× \| PASS \|/);
  const edited = first.replace(
    "_(No analysis written yet for these numbers.)_",
    "The lead's notes.",
  );
  assert.equal(extractAnalysis(edited), "The lead's notes.");
  assert.match(renderResults(meta, [section], extractAnalysis(edited)), /The lead's notes\./);
});

Deno.test({
  name: "bench: `deno task bench --quick` runs every figure",
  ignore: Deno.env.get("CI") !== "true" && Deno.env.get("BENCH_QUICK") !== "1",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "bench-quick-" });
    try {
      const out = `${dir}/RESULTS.md`;
      const root = new URL("..", import.meta.url).pathname;
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--config",
          `${root}deno.json`,
          "--allow-all",
          `${root}bench/run.ts`,
          "--quick",
          `--out=${out}`,
        ],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, `bench --quick failed:\n${log.slice(-4000)}`);
      const markdown = await Deno.readTextFile(out);
      for (
        const title of [
          "1. Request overhead",
          "2. Large inputs",
          "3. Provider calls per job",
          "4. Ready → stored",
          "5. Cold start",
          "6. Sweeper throughput",
        ]
      ) {
        assert.match(markdown, new RegExp(`## ${title}`), `${title} is missing`);
      }
      assert.doesNotMatch(markdown, /did not complete/);
      const rows = markdown.split("\n").filter((line) => /\| (PASS|FAIL|info) \|$/.test(line));
      assert.ok(rows.length >= 20, `only ${rows.length} result rows`);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
