/**
 * Figure 3 — provider calls per job. Jobs whose generation takes 5 s and 30 s (2 s with --quick;
 * the simulator's per-prompt `[sim:ready-after=N]`), created at once on a server in its own
 * process, first polling only (the local default), then with webhooks (PUBLIC_BASE_URL set to the
 * server, so the simulator POSTs to /bfl-webhook/jobs/<id> when the task is Ready).
 *
 * The jobs are created 2.5 s / N apart, so they meet the background loop (once a second) and
 * their 1.5 s poll interval at different phases.
 *
 * Polls are the simulator's own count of get_result requests divided by the jobs; nothing else
 * reads the jobs while they run (a status read would poll). Ready → stored is each job's
 * finished_at minus the moment its simulator task became Ready.
 *
 * Baseline: BFL's documented loop, a poll every 1.5 s, which needs ceil(duration / 1.5) polls and
 * stores a Ready image at most 1.5 s after it is Ready.
 *
 * @module
 */
import { configFromEnv } from "../../shared/config/load-config.ts";
import { type BenchContext, serverEnv } from "./context.ts";
import { collectFinished, createJobs, type FinishedJob, JobWatcher } from "./jobs-watch.ts";
import { freePort, startLocalServer } from "./procs.ts";
import { newSection, type Section, verdict } from "./report.ts";
import { ms, num, ratio, summarize } from "./stats.ts";

export const DOCUMENTED_POLL_MS = 1500;

export interface PollScenario {
  durationMs: number;
  webhooks: boolean;
  jobs: FinishedJob[];
  polls: number;
  webhooksSent: number;
  wallMs: number;
}

/** Starts a server (webhooks or not), runs `count` jobs of `durationMs`, stops the server. */
export async function runJobs(
  ctx: BenchContext,
  options: {
    durationMs: number;
    webhooks: boolean;
    count: number;
    tag: string;
    warmup?: number;
    /** Create one job every this many ms instead of all at once. */
    spacingMs?: number;
    concurrency?: number;
  },
): Promise<PollScenario> {
  const { sim } = ctx;
  sim.reset();
  const port = freePort();
  const server = await startLocalServer(
    serverEnv(sim, options.webhooks ? { PUBLIC_BASE_URL: `http://127.0.0.1:${port}` } : {}),
    { port },
  );
  const watcher = new JobWatcher(server);
  try {
    if (options.warmup) {
      // A few quick jobs first, so the measured ones do not pay for JIT and first connections.
      const warm = await createJobs(
        server.origin,
        Array.from(
          { length: options.warmup },
          (_, i) => `bench: warm-up ${options.tag} ${i} [sim:ready-after=0]`,
        ),
      );
      await watcher.waitFor(warm, 30_000);
      sim.reset();
    }
    const prompts = Array.from(
      { length: options.count },
      (_, i) =>
        `bench: ${options.tag} ${
          options.webhooks ? "webhooks" : "polling"
        } job ${i} [sim:ready-after=${options.durationMs}]`,
    );
    const started = performance.now();
    const ids = await createJobs(
      server.origin,
      prompts,
      options.concurrency ?? 8,
      options.spacingMs ?? 0,
    );
    await watcher.waitFor(ids, options.durationMs * Math.ceil(options.count / 24) + 120_000);
    const wallMs = performance.now() - started;
    const polls = sim.counts.polls;
    const webhooksSent = sim.counts.webhooksSent;
    const jobs = await collectFinished(server.origin, sim, ids, watcher);
    const failed = jobs.filter((j) => j.status !== "succeeded");
    if (failed.length > 0) {
      throw new Error(`${failed.length} jobs did not succeed (${failed[0].status})`);
    }
    return {
      durationMs: options.durationMs,
      webhooks: options.webhooks,
      jobs,
      polls,
      webhooksSent,
      wallMs,
    };
  } finally {
    watcher.close();
    await server.stop();
  }
}

export async function providerCalls(ctx: BenchContext): Promise<Section> {
  const defaults = configFromEnv({});
  const section = newSection("polls", "3. Provider calls per job", ctx.commandFor("polls"));
  const durations = ctx.quick ? [2000] : [5000, 30_000];
  const count = ctx.quick ? 4 : 8;
  const scenarios: PollScenario[] = [];
  for (const durationMs of durations) {
    for (const webhooks of [false, true]) {
      ctx.log(
        `3. ${count} jobs of ${durationMs / 1000} s, ${
          webhooks ? "with webhooks" : "polling only"
        }`,
      );
      scenarios.push(
        await runJobs(ctx, {
          durationMs,
          webhooks,
          count,
          tag: `polls ${durationMs}`,
          warmup: 2,
          spacingMs: 2500 / count,
        }),
      );
    }
  }
  for (const s of scenarios) {
    const perJob = s.polls / s.jobs.length;
    const loop = Math.ceil(s.durationMs / DOCUMENTED_POLL_MS);
    const label = `${s.durationMs / 1000} s generation, ${
      s.webhooks ? "with webhooks" : "polling only"
    }`;
    section.rows.push({
      metric: `Polls per job, ${label}`,
      value: num(perJob, 2),
      baseline: `${loop} (documented loop: every 1.5 s)`,
      ratio: ratio(perJob / loop),
      target: s.webhooks ? "≤ 1" : `≤ ${loop} (the documented loop)`,
      result: verdict(s.webhooks ? perJob <= 1 : perJob <= loop),
    });
    const r2s = summarize(s.jobs.map((j) => j.readyToStoredMs ?? NaN));
    section.rows.push({
      metric: `Ready → stored, ${label} (worst of ${s.jobs.length} jobs)`,
      value: ms(r2s.max),
      baseline: `${ms(DOCUMENTED_POLL_MS)} (documented loop's worst case)`,
      ratio: ratio(r2s.max / DOCUMENTED_POLL_MS),
      target: "≤ 2,000 ms",
      result: verdict(r2s.max <= 2000),
    });
  }
  section.tables.push({
    title:
      "Per scenario (Ready → stored from the simulator's readyAt to the job's finished_at; 'logged' is the service's own ready_to_stored_ms, counted from when it first saw Ready)",
    header: [
      "Scenario",
      "Jobs",
      "Polls",
      "Polls/job",
      "Webhooks sent",
      "Ready→stored p50",
      "max",
      "logged p50",
      "Wall",
    ],
    rows: scenarios.map((s) => {
      const r2s = summarize(s.jobs.map((j) => j.readyToStoredMs ?? NaN));
      const logged = summarize(s.jobs.map((j) => j.loggedReadyToStoredMs ?? NaN));
      return [
        `${s.durationMs / 1000} s, ${s.webhooks ? "webhooks" : "polling"}`,
        String(s.jobs.length),
        String(s.polls),
        num(s.polls / s.jobs.length, 2),
        String(s.webhooksSent),
        ms(r2s.p50),
        ms(r2s.max),
        ms(logged.p50),
        ms(s.wallMs),
      ];
    }),
  });
  section.notes.push(
    `Server defaults (shared/config/load-config.ts): POLL_INTERVAL_MS=${defaults.pollIntervalMs}, SWEEP_INTERVAL_MS=${defaults.sweepIntervalMs} (the background loop looks for due jobs that often), WEBHOOK_POLL_INTERVAL_MS=${defaults.webhookPollIntervalMs} (the safety-net poll while a webhook is expected).`,
    "With webhooks, PUBLIC_BASE_URL is the server itself; the simulator posts the webhook the moment the task is Ready.",
  );
  section.raw = { scenarios };
  return section;
}
