/**
 * Figure 4 — Ready → stored with 200 jobs in flight (48 with --quick). BFL runs at most 24 tasks
 * at once, so the service submits 24 and queues the rest, submitting each as a slot frees; every
 * job is measured from its own task's Ready (simulator readyAt) to its finished_at.
 *
 * Baseline: the same measurement with 5 jobs (no queue) on the same kind of server, in this run.
 * Target: the 2 s of figure 3 at the 99th percentile.
 *
 * @module
 */
import type { BenchContext } from "./context.ts";
import { type PollScenario, runJobs } from "./provider-calls.ts";
import { newSection, type Section, verdict } from "./report.ts";
import { ms, num, ratio, summarize } from "./stats.ts";

export async function readyToStored(ctx: BenchContext): Promise<Section> {
  const section = newSection("ready", "4. Ready → stored under load", ctx.commandFor("ready"));
  const count = ctx.quick ? 48 : 200;
  const durationMs = ctx.quick ? 1000 : 3000;
  const results: { light: PollScenario; loaded: PollScenario }[] = [];
  for (const webhooks of [false, true]) {
    const mode = webhooks ? "with webhooks" : "polling only";
    ctx.log(`4. baseline: 5 jobs, ${mode}`);
    const light = await runJobs(ctx, {
      durationMs,
      webhooks,
      count: 5,
      tag: "ready light",
      warmup: 2,
    });
    ctx.log(`4. ${count} jobs in flight, ${mode}`);
    const loaded = await runJobs(ctx, {
      durationMs,
      webhooks,
      count,
      tag: "ready loaded",
      warmup: 2,
    });
    results.push({ light, loaded });
    const base = summarize(light.jobs.map((j) => j.readyToStoredMs ?? NaN));
    const under = summarize(loaded.jobs.map((j) => j.readyToStoredMs ?? NaN));
    section.rows.push({
      metric: `Ready → stored p50, ${count} jobs in flight, ${mode}`,
      value: ms(under.p50),
      baseline: `${ms(base.p50)} (5 jobs)`,
      ratio: ratio(under.p50 / base.p50),
      target: "—",
      result: "info",
    });
    section.rows.push({
      metric: `Ready → stored p99, ${count} jobs in flight, ${mode}`,
      value: ms(under.p99),
      baseline: `${ms(base.p99)} (5 jobs)`,
      ratio: ratio(under.p99 / base.p99),
      target: "≤ 2,000 ms",
      result: verdict(under.p99 <= 2000),
    });
  }
  section.tables.push({
    title: `Detail (${durationMs / 1000} s generations; the ideal wall time is ceil(jobs / 24) × ${
      durationMs / 1000
    } s)`,
    header: [
      "Run",
      "Jobs",
      "Ready→stored p50",
      "p90",
      "p99",
      "max",
      "Polls/job",
      "Wall",
      "Ideal wall",
    ],
    rows: results.flatMap(({ light, loaded }) =>
      [light, loaded].map((s) => {
        const r = summarize(s.jobs.map((j) => j.readyToStoredMs ?? NaN));
        return [
          `${s.jobs.length} jobs, ${s.webhooks ? "webhooks" : "polling"}`,
          String(s.jobs.length),
          ms(r.p50),
          ms(r.p90),
          ms(r.p99),
          ms(r.max),
          num(s.polls / s.jobs.length, 2),
          ms(s.wallMs),
          ms(Math.ceil(s.jobs.length / 24) * s.durationMs),
        ];
      })
    ),
  });
  section.notes.push(
    "Jobs are created 8 requests at a time; the first 24 are submitted inline, the rest answer `queued` and are submitted by the background loop (SWEEP_INTERVAL_MS=1000) as slots free.",
  );
  section.raw = {
    results: results.map(({ light, loaded }) => ({
      webhooks: light.webhooks,
      light: light.jobs.map((j) => j.readyToStoredMs),
      loaded: loaded.jobs.map((j) => j.readyToStoredMs),
      wallMs: loaded.wallMs,
      polls: loaded.polls,
    })),
  };
  return section;
}
