/**
 * Figure 1 — request overhead through the whole stack (the server in its own process, wrk in
 * another) against a bare Hono app answering a constant JSON, on the same machine.
 *
 * - Status reads: GET /images/jobs/:id of a finished job, at 1 connection (latency) and 16
 *   (throughput), on the embedded store (PGlite) and on PostgreSQL (DATABASE_URL).
 * - Job creation: POST /images/jobs, paced at a few jobs a second so that every job is submitted
 *   inline (BFL's 24-slot limit is never reached), interleaved with the same submit sent straight
 *   to the simulator by the same client: the difference of the medians is what the service adds.
 *   Then wrk at 8 connections for throughput; beyond 24 jobs in flight the service answers
 *   `queued` without a provider call, and the table says how many did.
 *
 * @module
 */
import { startBare, startLocalServer } from "./procs.ts";
import { type BenchContext, createFinishedJob, serverEnv } from "./context.ts";
import { newSection, type Section, verdict } from "./report.ts";
import { ms, num, ratio, sleep, summarize } from "./stats.ts";
import { runWrk, wrkFailures, type WrkOptions, type WrkResult } from "./wrk.ts";
import { attributeCosts } from "./attribution.ts";
import { createTestDatabase } from "../../tests/support/postgres-cluster.ts";

const READ_CONNECTIONS = 16;
const CREATE_CONNECTIONS = 8;

interface Run {
  label: string;
  result: WrkResult;
}

/** Latency at 1 connection and throughput at `connections`, after a warm-up. */
async function measureGet(
  ctx: BenchContext,
  label: string,
  url: string,
  runs: Run[],
): Promise<{ lat: WrkResult; tput: WrkResult }> {
  const duration = ctx.quick ? 3 : 10;
  await runWrk({ url, connections: READ_CONNECTIONS, durationS: ctx.quick ? 1 : 2 }); // warm-up (JIT, connections)
  const lat = await runWrk({ url, connections: 1, durationS: duration });
  runs.push({ label: `${label}, 1 connection`, result: lat });
  await sleep(300);
  const tput = await runWrk({ url, connections: READ_CONNECTIONS, durationS: duration });
  runs.push({ label: `${label}, ${READ_CONNECTIONS} connections`, result: tput });
  for (const r of [lat, tput]) {
    if (wrkFailures(r) > 0) {
      throw new Error(`${label}: ${wrkFailures(r)} failed requests (${JSON.stringify(r.errors)})`);
    }
  }
  return { lat, tput };
}

interface Paced {
  service: number[];
  simulator: number[];
  queued: number;
  failed: number;
}

/**
 * Every 1/rate s: a POST /images/jobs to the service, and half a period later the equivalent
 * submit straight to the simulator; both timed by this process from send to the end of the body.
 */
async function pacedCreates(
  ctx: BenchContext,
  origin: string,
  rate: number,
  seconds: number,
): Promise<Paced> {
  const { sim } = ctx;
  const out: Paced = { service: [], simulator: [], queued: 0, failed: 0 };
  const period = 1000 / rate;
  const total = Math.round(rate * seconds);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const at = start + i * period;
    await sleep(Math.max(0, at - performance.now()));
    pending.push((async () => {
      const t0 = performance.now();
      const response = await fetch(`${origin}/images/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          prompt: `bench: paced create ${i} [sim:ready-after=0]`,
          output_format: "png",
        }),
      });
      const body = await response.json();
      const elapsed = performance.now() - t0;
      if (response.status !== 202) out.failed++;
      else if (body.status !== "running") out.queued++; // answered without a provider call
      else out.service.push(elapsed);
    })());
    await sleep(Math.max(0, at + period / 2 - performance.now()));
    pending.push((async () => {
      const t0 = performance.now();
      const response = await fetch(`${sim.apiUrl}/v1/flux-kontext-pro`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-key": sim.key },
        // What the service sends for that request (shared/jobs/job-service.ts providerParams).
        body: JSON.stringify({
          prompt: `bench: paced direct ${i} [sim:ready-after=0]`,
          output_format: "png",
          safety_tolerance: 2,
        }),
      });
      await response.arrayBuffer();
      const elapsed = performance.now() - t0;
      if (response.status !== 200) out.failed++;
      else out.simulator.push(elapsed);
    })());
  }
  await Promise.all(pending);
  return out;
}

export async function requestOverhead(ctx: BenchContext): Promise<Section> {
  const section = newSection("overhead", "1. Request overhead", ctx.commandFor("overhead"));
  const runs: Run[] = [];
  const duration = ctx.quick ? 3 : 10;

  ctx.log("1. bare Hono app");
  const bare = await startBare();
  let bareRead: { lat: WrkResult; tput: WrkResult };
  try {
    bareRead = await measureGet(
      ctx,
      "bare Hono GET /images/jobs/:id (constant JSON)",
      `${bare.origin}/images/jobs/x`,
      runs,
    );
  } finally {
    await bare.child.stop();
  }

  ctx.log("1. service on the embedded store (PGlite)");
  ctx.sim.reset();
  const server = await startLocalServer(serverEnv(ctx.sim), { keepLines: false });
  let read: { lat: WrkResult; tput: WrkResult };
  let paced: Paced;
  let create: WrkResult;
  const rate = 6;
  try {
    const id = await createFinishedJob(server.origin);
    read = await measureGet(
      ctx,
      "service GET /images/jobs/:id, PGlite",
      `${server.origin}/images/jobs/${id}`,
      runs,
    );
    ctx.log("1. paced job creation vs the simulator's own submit");
    await pacedCreates(ctx, server.origin, rate, ctx.quick ? 1 : 2); // warm-up
    paced = await pacedCreates(ctx, server.origin, rate, ctx.quick ? 6 : 30);
    ctx.log("1. job creation throughput");
    await sleep(3000); // let the paced jobs finish (they hold provider slots)
    const createOptions: WrkOptions = {
      url: `${server.origin}/images/jobs`,
      connections: CREATE_CONNECTIONS,
      durationS: duration,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        prompt: "bench: creation throughput [sim:ready-after=0]",
        output_format: "png",
      }),
      countBodyContaining: '"status":"queued"',
    };
    create = await runWrk(createOptions);
    runs.push({
      label: `service POST /images/jobs, ${CREATE_CONNECTIONS} connections`,
      result: create,
    });
  } finally {
    await server.stop();
  }

  ctx.log("1. service on PostgreSQL (DATABASE_URL)");
  let pgRead: { lat: WrkResult; tput: WrkResult } | undefined;
  try {
    const cluster = await ctx.postgres();
    const db = await createTestDatabase(cluster);
    ctx.sim.reset();
    const pgServer = await startLocalServer(serverEnv(ctx.sim, { DATABASE_URL: db.url }), {
      keepLines: false,
    });
    try {
      const id = await createFinishedJob(pgServer.origin);
      pgRead = await measureGet(
        ctx,
        "service GET /images/jobs/:id, PostgreSQL",
        `${pgServer.origin}/images/jobs/${id}`,
        runs,
      );
    } finally {
      await pgServer.stop();
      await db.drop().catch(() => {});
    }
  } catch (error) {
    section.notes.push(`PostgreSQL run failed: ${(error as Error).message}`);
  }

  // ---- rows
  const tputRatio = read.tput.rps / bareRead.tput.rps;
  section.rows.push({
    metric: `GET /images/jobs/:id throughput, PGlite (${READ_CONNECTIONS} conns)`,
    value: `${num(read.tput.rps)} req/s`,
    baseline: `${num(bareRead.tput.rps)} req/s (bare Hono)`,
    ratio: ratio(tputRatio),
    target: "≥ 0.50×",
    result: verdict(tputRatio >= 0.5),
  });
  if (pgRead) {
    const pgRatio = pgRead.tput.rps / bareRead.tput.rps;
    section.rows.push({
      metric: `GET /images/jobs/:id throughput, PostgreSQL (${READ_CONNECTIONS} conns)`,
      value: `${num(pgRead.tput.rps)} req/s`,
      baseline: `${num(bareRead.tput.rps)} req/s (bare Hono)`,
      ratio: ratio(pgRatio),
      target: "≥ 0.50×",
      result: verdict(pgRatio >= 0.5),
    });
  }
  for (const [label, r] of [["PGlite", read], ["PostgreSQL", pgRead]] as const) {
    if (!r) continue;
    for (const p of ["p50", "p99"] as const) {
      section.rows.push({
        metric: `GET /images/jobs/:id ${p} latency, ${label} (1 conn)`,
        value: ms(r.lat.latencyMs[p]),
        baseline: `${ms(bareRead.lat.latencyMs[p])} (bare Hono)`,
        ratio: ratio(r.lat.latencyMs[p] / bareRead.lat.latencyMs[p]),
        target: "—",
        result: "info",
      });
    }
  }
  const service = summarize(paced.service);
  const simulator = summarize(paced.simulator);
  const added = service.p50 - simulator.p50;
  section.rows.push({
    metric: "POST /images/jobs p50: time added over the simulator's submit",
    value: `+${ms(added)} (${ms(service.p50)} in all)`,
    baseline: `${ms(simulator.p50)} (simulator submit p50)`,
    ratio: ratio(service.p50 / simulator.p50),
    target: "≤ +5 ms",
    result: verdict(added <= 5),
  });
  section.rows.push({
    metric: "POST /images/jobs p99 (paced)",
    value: ms(service.p99),
    baseline: `${ms(simulator.p99)} (simulator submit p99)`,
    ratio: ratio(service.p99 / simulator.p99),
    target: "—",
    result: "info",
  });
  section.rows.push({
    metric: `POST /images/jobs throughput (${CREATE_CONNECTIONS} conns)`,
    value: `${num(create.rps)} req/s`,
    baseline: `${num(bareRead.tput.rps)} req/s (bare Hono)`,
    ratio: ratio(create.rps / bareRead.tput.rps),
    target: "—",
    result: "info",
  });

  section.tables.push({
    title: "Every wrk run (wrk -t1, keep-alive; latency from wrk's own histogram)",
    header: ["Run", "Requests", "req/s", "p50", "p90", "p99", "max", "Failed"],
    rows: runs.map(({ label, result: r }) => [
      label,
      String(r.requests),
      num(r.rps),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p90),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.max),
      String(wrkFailures(r)),
    ]),
  });
  section.tables.push({
    title: `Paced creation (${rate} jobs/s for ${
      ctx.quick ? 6 : 30
    } s, each interleaved with a direct simulator submit; this process's fetch is the client for both)`,
    header: ["Client → ", "n", "p50", "p90", "p99", "max"],
    rows: [
      [
        "service POST /images/jobs (submitted inline)",
        String(service.n),
        ms(service.p50),
        ms(service.p90),
        ms(service.p99),
        ms(service.max),
      ],
      [
        "simulator POST /v1/flux-kontext-pro",
        String(simulator.n),
        ms(simulator.p50),
        ms(simulator.p90),
        ms(simulator.p99),
        ms(simulator.max),
      ],
    ],
  });
  section.notes.push(
    `Server: scripts/start-local.ts in its own process, ALLOW_ANONYMOUS=true, MAX_ACTIVE_JOBS_PER_USER=0, MAX_JOBS_PER_DAY=0, BFL_API_URL/BFL_TRUSTED_ORIGINS at the simulator (which runs in the benchmark process), default POLL_INTERVAL_MS (1500) and SWEEP_INTERVAL_MS (1000).`,
    `Paced creation: ${paced.queued} of ${
      paced.queued + paced.service.length
    } service answers were \`queued\` (no provider call) and are left out of its latency; ${paced.failed} requests failed.`,
    `Creation throughput: ${create.matched} of ${create.requests} answers were \`queued\` — beyond BFL's 24 active tasks the service stores the job and answers without calling BFL, so this is mostly the cost of accepting a job (validation, insert), not of submitting it.`,
    `The bare app's answer is a constant job view of the same size as the service's (bench/bare-hono.ts), so both runs move the same bytes.`,
  );

  ctx.log("1. in-process cost attribution");
  try {
    const attribution = await attributeCosts(ctx);
    section.tables.push(...attribution.tables);
    section.notes.push(...attribution.notes);
    section.raw.attribution = attribution.raw;
  } catch (error) {
    section.notes.push(`In-process attribution failed: ${(error as Error).message}`);
  }
  section.raw = {
    ...section.raw,
    runs,
    paced: { service, simulator, queued: paced.queued, failed: paced.failed },
  };
  return section;
}
