/**
 * Figure 6 — sweeper throughput on PostgreSQL. For 1,000, 10,000 and 100,000 rows (1,000 and
 * 10,000 with --quick): a fresh database, mostly finished jobs inserted with SQL, plus N due
 * running jobs whose polling URLs point at real tasks of a simulator (in its own process,
 * scripts/bfl-simulator.ts) that are already Ready. Then `sweep(runner)` from shared/jobs/sweep.ts
 * — built by buildServices on a DATABASE_URL config, default options (50 jobs a pass, 8 at a
 * time) — is called back to back until every due job is stored: each advance is a poll, a
 * download, a file write and a transition. Also timed directly, inside a rolled-back
 * transaction: image_jobs_claim_due (limit 50) and image_jobs_active_counts, the two queries each
 * pass makes whatever the table holds.
 *
 * Baseline: the same figures at 1,000 rows. Target: no growth with the number of finished jobs
 * (≤ 1.5× — the slack is for the noise of a shared 2-core machine).
 *
 * @module
 */
import { configFromEnv } from "../../shared/config/load-config.ts";
import { sweep } from "../../shared/jobs/sweep.ts";
import { createLogger } from "../../shared/log/logger.ts";
import { buildServices } from "../../shared/wiring/build-services.ts";
import { connect, createTestDatabase } from "../../tests/support/postgres-cluster.ts";
import type { BenchContext } from "./context.ts";
import { Child, childEnv, CONFIG, ROOT } from "./procs.ts";
import { newSection, type Section, verdict } from "./report.ts";
import { median, ms, num, ratio } from "./stats.ts";

interface SimProcess {
  child: Child;
  apiUrl: string;
  pollOrigin: string;
  deliveryOrigin: string;
  key: string;
}

async function startSimulatorProcess(): Promise<SimProcess> {
  const child = new Child("simulator", [
    "run",
    "--config",
    CONFIG,
    "--allow-net",
    "--allow-env",
    "--allow-read",
    `${ROOT}/scripts/bfl-simulator.ts`,
    "--ready-after-ms",
    "0",
  ], { env: childEnv({}) });
  const line = await child.waitForLine(
    (l) => l.startsWith("{") && l.includes("apiUrl"),
    30_000,
    "the simulator's URLs",
  );
  return { child, ...JSON.parse(line) };
}

interface Scale {
  rows: number;
  due: number;
  sweepMs: number;
  advanced: number;
  passes: number;
  errors: number;
  succeeded: number;
  claimDueMs: number;
  activeCountsMs: number;
  insertMs: number;
  plans: { due: string; active: string };
  /** Per-step cost of advancing one due job, sequentially (ms). */
  steps?: Record<string, number>;
}

const FINISHED_SQL = `
with u as (select array_agg(id order by id) as ids from auth.users)
insert into public.image_jobs (user_id, model, params, inputs, status, provider_status, provider_task_id, polling_url,
  cost, output_mp, poll_count, submit_attempts, error_code, error_message, result_path, result_content_type,
  result_bytes, next_check_at, created_at, updated_at, submitted_at, ready_at, finished_at, last_checked_at)
select u.ids[1 + g % array_length(u.ids, 1)], 'flux-kontext-pro',
       jsonb_build_object('prompt', 'bench: finished job ' || g, 'output_format', 'jpeg', 'safety_tolerance', 2),
       '[]'::jsonb,
       case when g % 20 = 0 then 'failed' when g % 50 = 1 then 'moderated' else 'succeeded' end,
       case when g % 20 = 0 then 'Error' when g % 50 = 1 then 'Content Moderated' else 'Ready' end,
       gen_random_uuid()::text, 'https://api.eu1.bfl.ai/v1/get_result?id=' || g,
       4, 1.05, 3, 1,
       case when g % 20 = 0 then 'provider_error' when g % 50 = 1 then 'content_moderated' end,
       case when g % 20 = 0 then 'BFL reported an error' when g % 50 = 1 then 'moderated' end,
       case when g % 20 = 0 or g % 50 = 1 then null else 'results/' || u.ids[1 + g % array_length(u.ids, 1)] || '/' || g || '.jpeg' end,
       'image/jpeg', 123456,
       now() - make_interval(secs => g * 30), now() - make_interval(secs => g * 30 + 10), now() - make_interval(secs => g * 30),
       now() - make_interval(secs => g * 30 + 8), now() - make_interval(secs => g * 30 + 2), now() - make_interval(secs => g * 30),
       now() - make_interval(secs => g * 30)
  from generate_series(1, $1::int) g, u`;

const DUE_SQL = `
with u as (select array_agg(id order by id) as ids from auth.users)
insert into public.image_jobs (user_id, model, params, status, provider_status, provider_task_id, polling_url, cost,
  output_mp, submit_attempts, poll_count, next_check_at, submitted_at)
select u.ids[1 + (t.n % array_length(u.ids, 1))], 'flux-kontext-pro',
       jsonb_build_object('prompt', 'bench: due job ' || t.n, 'output_format', 'png', 'safety_tolerance', 2),
       'running', 'Pending', t.task_id, t.url, 4, 1.05, 1, 1, now() - interval '1 second', now() - interval '5 seconds'
  from jsonb_to_recordset($1::text::jsonb) as t(n int, task_id text, url text), u`;

async function plan(sql: ReturnType<typeof connect>, query: string): Promise<string> {
  const rows = await sql.unsafe(`explain ${query}`);
  return rows.map((r) => String(Object.values(r)[0]).trim()).filter((l) => /Scan|Index/.test(l))
    .map((l) => l.replace(/\s+\(cost.*$/, "")).join("; ");
}

async function timeInRollback(
  sql: ReturnType<typeof connect>,
  query: string,
  reps: number,
): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    let elapsed = 0;
    await sql.begin(async (tx) => {
      const t0 = performance.now();
      await tx.unsafe(query);
      elapsed = performance.now() - t0;
      throw new Error("rollback");
    }).catch((error: Error) => {
      if (error.message !== "rollback") throw error;
    });
    if (i >= 2) times.push(elapsed); // two warm-up calls
  }
  return median(times);
}

/** Tasks submitted straight to the simulator (Ready at once), as rows for DUE_SQL. */
async function simulatorTasks(
  sim: SimProcess,
  from: number,
  count: number,
): Promise<{ n: number; task_id: string; url: string }[]> {
  const tasks: { n: number; task_id: string; url: string }[] = [];
  let next = from;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < from + count) {
      const n = next++;
      const response = await fetch(`${sim.apiUrl}/v1/flux-kontext-pro`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-key": sim.key },
        body: JSON.stringify({
          prompt: `bench: sweeper task ${n}`,
          output_format: "png",
          safety_tolerance: 2,
        }),
      });
      const body = await response.json();
      if (response.status !== 200) {
        throw new Error(`simulator submit answered ${response.status}: ${JSON.stringify(body)}`);
      }
      tasks.push({ n, task_id: body.id, url: body.polling_url });
    }
  }));
  return tasks;
}

async function runScale(
  ctx: BenchContext,
  sim: SimProcess,
  rows: number,
  due: number,
  rounds: number,
  withSteps: boolean,
): Promise<Scale> {
  const cluster = await ctx.postgres();
  const db = await createTestDatabase(cluster);
  const dataDir = await Deno.makeTempDir({ prefix: "bench-sweeper-" });
  const config = configFromEnv({
    DATABASE_URL: db.url,
    BFL_API_KEY: sim.key,
    BFL_API_URL: sim.apiUrl,
    BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
    DATA_DIR: dataDir,
    SIGNING_SECRET: "bench-signing-secret",
  });
  const services = await buildServices(config, {
    log: createLogger({ minLevel: "error" }),
    workerId: "bench-sweeper",
  });
  const sql = connect(db.url);
  try {
    const t0 = performance.now();
    await sql.unsafe(
      "insert into auth.users (id) select gen_random_uuid() from generate_series(1, 100)",
    );
    await sql.unsafe(FINISHED_SQL, [rows - due]);

    await sql.unsafe(DUE_SQL, [JSON.stringify(await simulatorTasks(sim, 0, due))]);
    await sql.unsafe("analyze public.image_jobs");
    const insertMs = performance.now() - t0;

    const reps = ctx.quick ? 10 : 50;
    const claimDueMs = await timeInRollback(
      sql,
      "select count(*) from public.image_jobs_claim_due('bench-probe', 50, 60, 24)",
      reps,
    );
    const activeCountsMs = await timeInRollback(
      sql,
      "select * from public.image_jobs_active_counts()",
      reps,
    );
    const plans = {
      due: await plan(
        sql,
        "select id from public.image_jobs where status in ('queued', 'submitting', 'running') and next_check_at <= now() and (lease_until is null or lease_until < now())",
      ),
      active: await plan(
        sql,
        "select model, count(*) from public.image_jobs where status in ('submitting', 'running') and provider_status is distinct from 'Ready' group by model",
      ),
    };

    // Rounds: sweep the due jobs, delete them (the table keeps its size), insert new ones.
    let advanced = 0;
    let passes = 0;
    let errors = 0;
    let succeeded = 0;
    let sweepMs = 0;
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        await sql.unsafe(DUE_SQL, [JSON.stringify(await simulatorTasks(sim, round * due, due))]);
      }
      const started = performance.now();
      while (true) {
        const report = await sweep(services.runner);
        passes++;
        advanced += report.advanced;
        errors += report.errors;
        if (report.claimed === 0) break;
        if (performance.now() - started > 300_000) {
          throw new Error("the sweep did not finish within 5 minutes");
        }
      }
      sweepMs += performance.now() - started;
      const [{ n }] = await sql.unsafe(
        "select count(*)::int as n from public.image_jobs where params->>'prompt' like 'bench: due job %' and status = 'succeeded'",
      );
      succeeded += n;
      await sql.unsafe(
        "delete from public.image_jobs where params->>'prompt' like 'bench: due job %'",
      );
    }

    // One job at a time, step by step: what a single advance costs, without concurrency.
    let steps: Record<string, number> | undefined;
    if (withSteps) {
      const count = ctx.quick ? 10 : 40;
      await sql.unsafe(DUE_SQL, [JSON.stringify(await simulatorTasks(sim, rounds * due, count))]);
      const { store, storage, bfl, workerId } = services.runner;
      const samples: Record<string, number[]> = {};
      const time = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
        const t0 = performance.now();
        const value = await work();
        (samples[name] ??= []).push(performance.now() - t0);
        return value;
      };
      for (let i = 0; i < count; i++) {
        const [job] = await time(
          "store.claimDue (image_jobs_claim_due, limit 1)",
          () => store.claimDue(workerId, 1, 60, 0),
        );
        if (!job) throw new Error("no due job left for the step-by-step run");
        await time(
          "store.activeCounts (image_jobs_active_counts, once a pass)",
          () => store.activeCounts(),
        );
        const poll = await time(
          "bfl.poll (HTTP to the simulator)",
          () => bfl!.poll(job.polling_url!),
        );
        if (poll.kind !== "status" || !poll.sampleUrl) {
          throw new Error(`step-by-step poll: ${JSON.stringify(poll)}`);
        }
        const owner = job.lease_owner ?? workerId;
        await time(
          "store.transition: lease renewed before storing (job-runner.ts storeResult)",
          () =>
            store.transition(job.id, owner, ["running"], {
              lease_owner: owner,
              lease_until: new Date(Date.now() + 60_000),
            }),
        );
        const download = await time(
          "bfl.download (HTTP, 64×64 PNG)",
          () => bfl!.download(poll.sampleUrl!),
        );
        if (download.kind !== "ok") throw new Error(`step-by-step download: ${download.kind}`);
        await time(
          "storage.put (local file, write + rename)",
          () => storage.put(`results/${job.user_id}/${job.id}.png`, download.bytes, "image/png"),
        );
        await time(
          "store.transition → succeeded (image_jobs_transition)",
          () =>
            store.transition(job.id, owner, ["running"], {
              status: "succeeded",
              provider_status: "Ready",
              ready_at: new Date(),
              result_path: `results/${job.user_id}/${job.id}.png`,
              result_content_type: "image/png",
              result_bytes: download.bytes.byteLength,
              finished_at: new Date(),
              poll_count: job.poll_count + 1,
            }),
        );
      }
      steps = Object.fromEntries(
        Object.entries(samples).map(([name, values]) => [name, median(values)]),
      );
    }
    return {
      rows,
      due,
      sweepMs,
      advanced,
      passes,
      errors,
      succeeded,
      claimDueMs,
      activeCountsMs,
      insertMs,
      plans,
      steps,
    };
  } finally {
    await sql.end({ timeout: 5 });
    await services.close();
    await db.drop().catch(() => {});
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

export async function sweeperThroughput(ctx: BenchContext): Promise<Section> {
  const section = newSection("sweeper", "6. Sweeper throughput", ctx.commandFor("sweeper"));
  const scales = ctx.quick ? [1000, 10_000] : [1000, 10_000, 100_000];
  // The same due jobs at every size (at most half of the smallest table), swept in rounds.
  const due = ctx.quick ? 300 : 500;
  const rounds = ctx.quick ? 1 : 4;
  const sim = await startSimulatorProcess();
  const results: Scale[] = [];
  try {
    for (const rows of scales) {
      ctx.log(`6. ${rows.toLocaleString("en-US")} rows, ${due} due`);
      const scale = await runScale(ctx, sim, rows, due, rounds, rows === 10_000);
      if (scale.succeeded !== due * rounds) {
        throw new Error(
          `${rows} rows: ${scale.succeeded} of ${
            due * rounds
          } due jobs were stored (${scale.errors} errors)`,
        );
      }
      results.push(scale);
    }
  } finally {
    await sim.child.stop();
  }
  const base = results[0];
  const rate = (s: Scale) => s.advanced / (s.sweepMs / 1000);
  const ten = results.find((s) => s.rows === 10_000)!;
  section.rows.push({
    metric:
      `Due jobs advanced per second, 10,000 rows (${due} due × ${rounds} rounds: poll → download → store → transition)`,
    value: `${num(rate(ten))} jobs/s`,
    baseline: "16 polls/s (24 active tasks polled every 1.5 s)",
    ratio: ratio(rate(ten) / 16),
    target: "—",
    result: "info",
  });
  for (const s of results.slice(1)) {
    const label = `${s.rows.toLocaleString("en-US")} rows`;
    const perJob = s.sweepMs / s.advanced;
    const basePerJob = base.sweepMs / base.advanced;
    section.rows.push({
      metric: `Sweep time per due job, ${label} (${num(rate(s))} jobs/s)`,
      value: ms(perJob),
      baseline: `${ms(basePerJob)} (1,000 rows, ${num(rate(base))} jobs/s)`,
      ratio: ratio(perJob / basePerJob),
      target: "≤ 1.5×",
      result: verdict(perJob <= 1.5 * basePerJob),
    });
    section.rows.push({
      metric: `image_jobs_claim_due (limit 50), ${label}`,
      value: ms(s.claimDueMs),
      baseline: `${ms(base.claimDueMs)} (1,000 rows)`,
      ratio: ratio(s.claimDueMs / base.claimDueMs),
      target: "≤ 1.5×",
      result: verdict(s.claimDueMs <= 1.5 * base.claimDueMs),
    });
    section.rows.push({
      metric: `image_jobs_active_counts (every pass), ${label}`,
      value: ms(s.activeCountsMs),
      baseline: `${ms(base.activeCountsMs)} (1,000 rows)`,
      ratio: ratio(s.activeCountsMs / base.activeCountsMs),
      target: "≤ 1.5×",
      result: verdict(s.activeCountsMs <= 1.5 * base.activeCountsMs),
    });
  }
  section.tables.push({
    title: "Per table size",
    header: [
      "Rows",
      "Due",
      "Sweep wall",
      "Passes",
      "jobs/s",
      "claim_due",
      "active_counts",
      "Plan: due rows",
      "Plan: active counts",
      "Setup",
    ],
    rows: results.map((s) => [
      s.rows.toLocaleString("en-US"),
      String(s.due),
      ms(s.sweepMs),
      String(s.passes),
      num(rate(s)),
      ms(s.claimDueMs),
      ms(s.activeCountsMs),
      s.plans.due,
      s.plans.active,
      ms(s.insertMs),
    ]),
  });
  const steps = ten.steps;
  if (steps) {
    section.tables.push({
      title:
        "One due job advanced alone, step by step, 10,000 rows (median ms; what sweep() → advanceJob() does for a Ready task)",
      header: ["Step", "ms"],
      rows: Object.entries(steps).map(([name, value]) => [name, ms(value)]),
    });
  }
  section.notes.push(
    `Due jobs: ${due} a round, ${rounds} round${
      rounds > 1 ? "s" : ""
    } per size; each round's jobs are deleted once stored, so the table keeps its size. claim_due and active_counts are timed with the first round's due jobs in place (median of ${
      ctx.quick ? 10 : 50
    } calls, each in a rolled-back transaction).`,
    "Throwaway PostgreSQL 15 (tests/support/postgres-cluster.ts: fsync, synchronous_commit and full_page_writes off) on loopback; the store's pool is the default 5 connections; ANALYZE after the inserts.",
    "Finished rows: 93% succeeded, 5% failed, 2% moderated, created 30 s apart; 100 users. Queued jobs are not measured: each pass claims at most the free provider slots (24), so their rate is BFL's, not the sweeper's.",
    "The sweep runs in the benchmark process; the simulator it polls and downloads from runs in its own process.",
  );
  section.raw = { results };
  return section;
}
