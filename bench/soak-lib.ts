/**
 * The fault-injection soak (issue #4): many jobs from many users through the BFL simulator, with
 * faults injected all along and the server SIGKILLed and restarted mid-run, then an audit of what
 * was paid for against what was delivered.
 *
 * - The BFL simulator runs in this process (tests/support/bfl-simulator.ts); faults come from
 *   bench/soak-faults.ts; webhooks are on (PUBLIC_BASE_URL is the server's own URL).
 * - The server is a separate OS process (bench/soak-server.ts) on the embedded store (PGlite in
 *   DATA_DIR) or on a throwaway PostgreSQL (DATABASE_URL).
 * - The users are good mobile clients (bench/soak-client.ts).
 * - At the end the server is stopped and the audit reads the simulator's records, the server's
 *   log lines, the job rows and the image folder (see `DEFINITIONS`).
 *
 * @module
 */
import type { SqlClient } from "../shared/store/sql-client.ts";
import { openPglite } from "../shared/store/pglite-client.ts";
import { openPostgres } from "../shared/store/postgres-client.ts";
import {
  type BflSimulator,
  startBflSimulator,
  type TaskView,
} from "../tests/support/bfl-simulator.ts";
import { type PostgresCluster, startPostgresCluster } from "../tests/support/postgres-cluster.ts";
import {
  type ClientContext,
  type JobRecord,
  newClientStats,
  planJobs,
  runUser,
  TERMINAL,
} from "./soak-client.ts";
import { type EpisodeStats, FaultInjector, type FaultPlan } from "./soak-faults.ts";
import { codeVersion } from "./lib/code-version.ts";
import { createServerProcess, freeLoopbackPort, type ServerProcess } from "./soak-server.ts";

export type StoreKind = "embedded" | "postgres";
export type KillMoment = "any" | "between-steps" | "mid-submit" | "mid-poll";

export interface SoakOptions {
  store: StoreKind;
  jobs: number;
  users: number;
  /** SIGKILL + restart this many times, spread over the run (see `progress` in runSoak). */
  restarts: number;
  /**
   * When each kill lands (cycled over the restarts):
   * - `any`: whenever the run reaches the restart's share of progress;
   * - `mid-submit` / `mid-poll`: the simulator holds submits / polls for a few seconds and the kill
   *   comes once one is in flight, so the crash windows the README's policy covers (POST sent, task
   *   id not yet recorded; a job leased by the dead process) are hit for sure rather than by luck.
   *   Jobs the dead process held stay untouched until their lease expires (60 s, build-services.ts);
   * - `between-steps`: at a quiet moment (no client request, no BFL call, no slowed fault for 50 ms)
   *   with jobs queued and running, so no job waits out a dead lease: the restart costs seconds,
   *   which keeps the --quick run (and the smoke test) short.
   */
  killAt: KillMoment[];
  /** Seeds the job mix (models, prompts, generation times). */
  seed: number;
  /** Global bound: nothing is retried or followed after this long (ms from the start). */
  deadlineMs: number;
  /** Generation time per task, `[sim:ready-after=<ms>]`, drawn from this range. */
  readyAfterMs: [number, number];
  /** Share of jobs with each moderation directive. */
  moderatedShare: number;
  /** Jobs each user has in flight at once (above the server's per-user limit: 429s happen). */
  concurrencyPerUser: number;
  /** Random pause before each create, up to this (ms). */
  thinkMs: number;
  /** Users start at a random moment within this (ms). */
  startSpreadMs: number;
  /** A new fault episode on each lane this often (ms). */
  faultTickMs: number;
  faults: FaultPlan;
  /** The server's settings. */
  server: {
    pollIntervalMs: number;
    sweepIntervalMs: number;
    webhookPollIntervalMs: number;
    maxActiveJobsPerUser: number;
    maxJobsPerDay: number;
    jobTimeoutMs: number;
  };
  /** How long the server stays down after a SIGKILL before it is started again (ms). */
  downtimeMs: number;
  /** Keep the temporary folder (data, server.log) for inspection. */
  keep?: boolean;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
  progressEveryMs?: number;
}

/** The defaults of `deno task soak` (1,000 jobs, 50 users, 2 restarts) or of `--quick`. */
export function soakOptions(store: StoreKind, quick = false): SoakOptions {
  const common = {
    store,
    seed: 1,
    deadlineMs: 10 * 60_000,
    moderatedShare: 0.03,
    concurrencyPerUser: 6,
    server: {
      pollIntervalMs: 500,
      sweepIntervalMs: 250,
      webhookPollIntervalMs: 3000,
      maxActiveJobsPerUser: 5,
      maxJobsPerDay: 500,
      jobTimeoutMs: 15 * 60_000,
    },
    downtimeMs: 500,
  };
  if (quick) {
    return {
      ...common,
      jobs: 60,
      users: 5,
      restarts: 1,
      killAt: ["between-steps"],
      readyAfterMs: [100, 1000],
      thinkMs: 600,
      startSpreadMs: 500,
      faultTickMs: 500,
      faults: { submitDelayMs: 400, pollDelayMs: 300, webhookDelayMs: 300 },
    };
  }
  return {
    ...common,
    jobs: 1000,
    users: 50,
    restarts: 2,
    killAt: ["mid-submit", "mid-poll"],
    readyAfterMs: [200, 3000],
    thinkMs: 1500,
    startSpreadMs: 5000,
    faultTickMs: 1500,
    faults: { submitDelayMs: 1500, pollDelayMs: 1200, webhookDelayMs: 1000 },
  };
}

export interface Summary {
  total: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

export interface Target {
  name: string;
  pass: boolean;
  value: string;
}

export interface SoakReport {
  store: StoreKind;
  options: {
    jobs: number;
    users: number;
    restarts: number;
    seed: number;
    deadlineMs: number;
    readyAfterMs: [number, number];
  };
  wallTimeMs: number;
  /** First create to the last job seen terminal. */
  workloadMs: number;
  jobs: {
    planned: number;
    created: number;
    rejectedByApi: Record<string, number>;
    gaveUp: number;
    terminal: number;
    nonTerminal: number;
    byStatus: Record<string, number>;
    byErrorCode: Record<string, number>;
    byModel: Record<string, Record<string, number>>;
    /** Outcomes other than the prompt's (succeeded / moderated) or a documented unknown-outcome failure. */
    unexpected: { token: string; expected: string; status: string; errorCode: string | null }[];
    /** More than one job row for one token (one Idempotency-Key): a job created twice. */
    createdTwice: string[];
    /** Rows still queued/submitting/running after the server stopped. */
    nonTerminalRows: number;
  };
  images: {
    filesStored: number;
    rowsWithResultPath: number;
    servedThroughSignedUrl: number;
    succeededWithoutFile: string[];
    readyTasks: number;
    lost: {
      task: string;
      token: string;
      jobId: string | null;
      status: string | null;
      errorCode: string | null;
      downloads: number;
    }[];
    paidUndelivered: { total: number; byErrorCode: Record<string, number> };
    tempFilesLeft: number;
    orphanInputFiles: number;
  };
  provider: {
    submitRequests: number;
    accepted: number;
    rejected: Record<string, number>;
    duplicateSubmissions: { token: string; tasks: number }[];
    jobsWithoutAcceptedTask: number;
    polls: number;
    misroutedPolls: number;
    downloads: number;
    creditsBilled: number;
    perJob: { submits: Summary; polls: Summary; downloadsPerReadyTask: Summary };
    webhooks: {
      sent: number;
      tasksDropped: number;
      tasksDuplicated: number;
      failedDeliveries: number;
      non2xxAnswers: Record<string, number>;
    };
  };
  uploads: { imageStoredLines: number; duplicateUploads: { jobId: string; writes: number }[] };
  /** Time from creation to the accepted submit, and order within each user. */
  queue: {
    waitMs: Summary;
    /** Jobs submitted after a newer job of the same user had been submitted. */
    overtaken: number;
    worst: { token: string; waitMs: number; newerOfSameUserFirst: number } | null;
  };
  faults: Record<string, EpisodeStats>;
  restarts: {
    killAt: KillMoment;
    /** Whether the kill landed as meant (mid-submit / mid-poll: a held call was in flight;
     *  between-steps: a quiet moment came); null for `any`. */
    landed: boolean | null;
    afterCreated: number;
    terminalBefore: number;
    atMs: number;
    downMs: number;
  }[];
  client: ReturnType<typeof newClientStats>;
  server: { incarnations: number; events: Record<string, number>; notableErrors: unknown[] };
  targets: Target[];
  pass: boolean;
  definitions: Record<string, string>;
  /** The kept temporary folder (--keep), else null. */
  keptDir: string | null;
  /** The code under test: the commit, and which of the service's folders had uncommitted changes. */
  code: string;
  /** BFL tasks in flight at the simulator (mean of 1 s samples) per 10 s of the workload, with
   *  the restarts' windows marked: shows what a crash costs in throughput. */
  timeline: { fromS: number; bflActive: number; terminal: number; restart: boolean }[];
}

export const DEFINITIONS: Record<string, string> = {
  "images lost":
    "accepted BFL tasks that reached Ready at the simulator (billed, image available) and were not saved: either the service recorded the task id (a job row's provider_task_id) but that job is not succeeded with its result file present, or no job row has the task id and the job holding the prompt's token is not failed with an unknown submit outcome (provider_outcome_unknown / submit_interrupted)",
  "paid, not delivered":
    "Ready tasks whose submit answer never reached the service (connection dropped after BFL accepted, or the server killed between POST and recording the id): the job fails provider_outcome_unknown / submit_interrupted and is not resubmitted, by the README's 'never paid twice' policy; listed apart from lost",
  "duplicate provider submissions":
    "prompt tokens soak#<n> with more than one accepted task in the simulator's submissions",
  "duplicate uploads":
    "job ids with more than one job.image_stored line in the server's stdout, over all incarnations (one line per storage write of a result)",
  "images stored":
    "files under DATA_DIR/images/results (temporary *.tmp excluded), and job rows with result_path",
  "provider calls per job":
    "submits: job rows' submit_attempts (POSTs the service started, 429 retries included); polls: job rows' poll_count; downloads: the simulator's per-task download count over Ready tasks",
};

interface Row {
  id: string;
  user_id: string;
  model: string;
  status: string;
  error_code: string | null;
  provider_task_id: string | null;
  result_path: string | null;
  submit_attempts: number;
  poll_count: number;
  prompt: string;
  created_at: Date;
  submitted_at: Date | null;
}

const UNKNOWN_OUTCOME_CODES = ["provider_outcome_unknown", "submit_interrupted"];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tokenOf = (prompt: unknown) => /^soak#\d+/.exec(String(prompt ?? ""))?.[0] ?? "";
const bump = (counts: Record<string, number>, key: string, by = 1) =>
  counts[key] = (counts[key] ?? 0) + by;

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
  const total = sorted.reduce((sum, v) => sum + v, 0);
  return {
    total,
    mean: sorted.length ? total / sorted.length : 0,
    p50: at(0.5),
    p95: at(0.95),
    max: sorted.at(-1) ?? 0,
  };
}

async function listFiles(root: string, prefix = ""): Promise<{ path: string; size: number }[]> {
  const found: { path: string; size: number }[] = [];
  try {
    for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) found.push(...await listFiles(root, path));
      else found.push({ path, size: (await Deno.stat(`${root}/${path}`)).size });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found;
}

async function readRows(
  options: SoakOptions,
  dataDir: string,
  databaseUrl?: string,
): Promise<Row[]> {
  const sql: SqlClient = options.store === "embedded"
    ? await openPglite(`${dataDir}/pglite`)
    : openPostgres(databaseUrl!, { max: 1 });
  try {
    const rows = await sql.query<Record<string, unknown>>(
      `select id, user_id, model, status, error_code, provider_task_id, result_path, submit_attempts, poll_count,
              params->>'prompt' as prompt, created_at, submitted_at
         from public.image_jobs`,
    );
    return rows.map((row) =>
      ({
        ...row,
        id: String(row.id),
        submit_attempts: Number(row.submit_attempts),
        poll_count: Number(row.poll_count),
        created_at: new Date(row.created_at as string),
        submitted_at: row.submitted_at ? new Date(row.submitted_at as string) : null,
      }) as Row
    );
  } finally {
    await sql.close();
  }
}

/** Runs one soak on one store and audits it. Never throws for a failed target: see `pass`. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const say = options.progress ?? (() => {});
  const runDir = await Deno.makeTempDir({ prefix: `soak-${options.store}-` });
  const dataDir = `${runDir}/data`;
  let sim: BflSimulator | undefined;
  let cluster: PostgresCluster | undefined;
  let server: ServerProcess | undefined;
  let faults: FaultInjector | undefined;
  let progressTimer: number | undefined;
  let sampleTimer: number | undefined;
  try {
    sim = await startBflSimulator({ imageSize: 32 });
    if (options.store === "postgres") {
      say("starting a throwaway PostgreSQL ...");
      cluster = await startPostgresCluster();
    }
    const port = freeLoopbackPort();
    const apiKey = `soak-${crypto.randomUUID()}`;
    server = createServerProcess({
      port,
      cwd: runDir,
      logFile: `${runDir}/server.log`,
      env: {
        BFL_API_KEY: sim.key,
        BFL_API_URL: sim.apiUrl,
        BFL_ALPHA_API_URL: sim.apiUrl,
        BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
        DATA_DIR: dataDir,
        DATABASE_URL: cluster?.url ?? "",
        SUPABASE_URL: "",
        PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
        WEBHOOKS: "true",
        SERVER_API_KEYS: apiKey,
        ALLOW_ANONYMOUS: "false",
        SIGNING_SECRET: `soak-signing-${crypto.randomUUID()}`,
        MAX_ACTIVE_JOBS_PER_USER: String(options.server.maxActiveJobsPerUser),
        MAX_JOBS_PER_DAY: String(options.server.maxJobsPerDay),
        POLL_INTERVAL_MS: String(options.server.pollIntervalMs),
        SWEEP_INTERVAL_MS: String(options.server.sweepIntervalMs),
        WEBHOOK_POLL_INTERVAL_MS: String(options.server.webhookPollIntervalMs),
        JOB_TIMEOUT_MS: String(options.server.jobTimeoutMs),
      },
    });
    say(`starting the server on ${server.url} (${options.store}) ...`);
    await server.start();

    const runId = crypto.randomUUID().slice(0, 8);
    const records: JobRecord[] = planJobs(options, runId).map((plan) => ({
      plan,
      createAttempts: 0,
    }));
    const ctx: ClientContext = {
      api: `${server.url}/images`,
      apiKey,
      deadline: started + options.deadlineMs,
      stats: newClientStats(),
      requestTimeoutMs: 30_000,
      pollMs: { first: 500, max: 3000 },
      inFlightCreates: new Map(),
      inFlight: 0,
    };
    const byUser = new Map<string, JobRecord[]>();
    for (const record of records) {
      byUser.set(record.plan.userId, [...(byUser.get(record.plan.userId) ?? []), record]);
    }

    let created = 0;
    let clientsDone = false;
    faults = new FaultInjector(sim, options.faultTickMs, options.faults);
    const workloadStart = Date.now();
    faults.start();
    const clients = Promise.all([...byUser.values()].map((mine) =>
      runUser(ctx, mine, {
        concurrency: options.concurrencyPerUser,
        thinkMs: options.thinkMs,
        startDelayMs: Math.random() * options.startSpreadMs,
      }, () => {
        // Faults stop with the last create: the drain phase then shows the recovery.
        if (++created === records.length) faults?.stop();
      })
    )).finally(() => clientsDone = true);

    // Kills are spread over the run's progress: created + terminal jobs out of 2 × jobs.
    const progress = () => (created + records.filter((r) => r.final).length) / (2 * records.length);
    const restarts: SoakReport["restarts"] = [];
    const restartLoop = async () => {
      for (let i = 1; i <= options.restarts; i++) {
        while (progress() < i / (options.restarts + 1) && !clientsDone) await sleep(50);
        if (clientsDone) return;
        const killAt = options.killAt[(i - 1) % options.killAt.length] ?? "any";
        const landed = killAt === "any"
          ? null
          : killAt === "between-steps"
          ? await quietMoment(sim!, ctx)
          : await holdCall(sim!, killAt === "mid-submit" ? "submit" : "poll", ctx);
        const at = Date.now();
        const terminalBefore = records.filter((r) => r.final).length;
        say(
          `restart ${i}: SIGKILL (${killAt}) with ${created} jobs created, ${terminalBefore} terminal`,
        );
        await server!.kill();
        releaseHeldCalls(sim!);
        await sleep(options.downtimeMs);
        await server!.start();
        restarts.push({
          killAt,
          landed,
          afterCreated: created,
          terminalBefore,
          atMs: at - workloadStart,
          downMs: Date.now() - at,
        });
      }
    };
    // A failed restart ends the run: the clients give up at once and the error is thrown after them.
    let restartError: unknown;
    const restarting = restartLoop().catch((error) => {
      restartError = error;
      ctx.deadline = 0;
    });

    const progressLine = () => {
      const statuses: Record<string, number> = {};
      for (const record of records) if (record.final) bump(statuses, record.final.status);
      const terminal = Object.values(statuses).reduce((a, b) => a + b, 0);
      const detail = Object.entries(statuses).map(([k, v]) => `${k} ${v}`).join(", ");
      return `[${options.store} ${
        ((Date.now() - workloadStart) / 1000).toFixed(0)
      } s] created ${created}/${records.length}, ` +
        `terminal ${terminal}${detail ? ` (${detail})` : ""}, BFL active ${
          sim!.activeTasks()
        }, server #${server!.incarnations}`;
    };
    progressTimer = setInterval(() => say(progressLine()), options.progressEveryMs ?? 5000);
    const samples: { t: number; active: number; terminal: number }[] = [];
    sampleTimer = setInterval(() => {
      samples.push({
        t: Date.now() - workloadStart,
        active: sim!.activeTasks(),
        terminal: records.filter((r) => r.final).length,
      });
    }, 1000);

    await Promise.all([clients, restarting]);
    if (restartError) throw restartError;
    clearInterval(progressTimer);
    clearInterval(sampleTimer);
    progressTimer = sampleTimer = undefined;
    faults.stop();
    const workloadMs = Date.now() - workloadStart;
    say(progressLine());
    say("stopping the server ...");
    await server.stop();

    const rows = await readRows(options, dataDir, cluster?.url);
    const files = await listFiles(`${dataDir}/images`);
    const report = audit({ options, sim, server, records, rows, files, ctx, faults, restarts });
    report.wallTimeMs = Date.now() - started;
    report.workloadMs = workloadMs;
    report.keptDir = options.keep ? runDir : null;
    report.code = await codeVersion();
    report.timeline = timeline(samples, restarts);
    return report;
  } finally {
    clearInterval(progressTimer);
    clearInterval(sampleTimer);
    faults?.stop();
    await server?.stop(5000).catch(() => {});
    await sim?.close();
    await cluster?.stop();
    if (!options.keep) await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

/** 10 s windows of the 1 s samples. */
function timeline(
  samples: { t: number; active: number; terminal: number }[],
  restarts: SoakReport["restarts"],
): SoakReport["timeline"] {
  const windows: SoakReport["timeline"] = [];
  for (let from = 0; samples.some((s) => s.t >= from); from += 10_000) {
    const inside = samples.filter((s) => s.t >= from && s.t < from + 10_000);
    if (inside.length === 0) continue;
    windows.push({
      fromS: from / 1000,
      bflActive: Math.round(inside.reduce((sum, s) => sum + s.active, 0) / inside.length),
      terminal: inside.at(-1)!.terminal,
      restart: restarts.some((r) => r.atMs >= from && r.atMs < from + 10_000),
    });
  }
  return windows;
}

/**
 * Makes the simulator hold submits (or polls) for 4 s and waits (up to 10 s) until one is held, so
 * a kill right after lands while the server waits for BFL's answer. For submits it also waits (up
 * to 5 s more) for a client's create to hang on its inline submit, so that create's retry after
 * the restart must be answered from the Idempotency-Key.
 */
async function holdCall(
  sim: BflSimulator,
  kind: "submit" | "poll",
  ctx: ClientContext,
): Promise<boolean> {
  const counter = kind === "submit" ? "submitRequests" : "polls";
  const before = sim.counts[counter];
  if (kind === "submit") sim.faults.submitDelayMs = 4000;
  else sim.faults.pollDelayMs = 4000;
  const held = () => sim.counts[counter] > before;
  const until = Date.now() + 10_000;
  while (!held() && Date.now() < until) await sleep(10);
  if (kind === "submit") {
    const hangingCreate = () =>
      [...ctx.inFlightCreates.values()].some((sentAt) => Date.now() - sentAt > 300);
    const orUntil = Date.now() + 5000;
    while (!hangingCreate() && Date.now() < orUntil) await sleep(10);
  }
  await sleep(20); // let the held request's body arrive
  return held();
}

/** Waits (up to 10 s) for 50 ms without client requests, BFL calls or slowed faults; false if none came. */
async function quietMoment(sim: BflSimulator, ctx: ClientContext): Promise<boolean> {
  const activity = () =>
    sim.counts.submitRequests + sim.counts.polls + sim.counts.downloads + sim.counts.webhooksSent;
  const slowed = () =>
    Boolean(sim.faults.submitDelayMs || sim.faults.pollDelayMs || sim.faults.webhookDelayMs);
  const until = Date.now() + 10_000;
  let last = activity();
  let quietSince = Date.now();
  while (Date.now() < until) {
    await sleep(5);
    const now = activity();
    if (now !== last || ctx.inFlight > 0 || slowed()) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= 50) {
      return true;
    }
  }
  return false;
}

function releaseHeldCalls(sim: BflSimulator): void {
  delete sim.faults.submitDelayMs;
  delete sim.faults.pollDelayMs;
}

interface AuditInput {
  options: SoakOptions;
  sim: BflSimulator;
  server: ServerProcess;
  records: JobRecord[];
  rows: Row[];
  files: { path: string; size: number }[];
  ctx: ClientContext;
  faults: FaultInjector;
  restarts: SoakReport["restarts"];
}

function audit(input: AuditInput): SoakReport {
  const { options, sim, server, records, rows, files, ctx } = input;

  // ---- jobs, as the clients saw them
  const byStatus: Record<string, number> = {};
  const byErrorCode: Record<string, number> = {};
  const byModel: Record<string, Record<string, number>> = {};
  const rejectedByApi: Record<string, number> = {};
  const unexpected: SoakReport["jobs"]["unexpected"] = [];
  let gaveUp = 0;
  for (const record of records) {
    if (record.rejected) bump(rejectedByApi, `${record.rejected.status} ${record.rejected.code}`);
    if (record.gaveUp) gaveUp++;
    if (!record.final) continue;
    const { status, errorCode } = record.final;
    bump(byStatus, status);
    if (errorCode) bump(byErrorCode, errorCode);
    bump(byModel[record.plan.model] ??= {}, status);
    const expected = record.plan.expected;
    const asExpected = expected === "succeeded"
      ? status === "succeeded"
      : status === "moderated" && errorCode === expected;
    const explained = status === "failed" && UNKNOWN_OUTCOME_CODES.includes(errorCode ?? "");
    if (!asExpected && !explained) {
      unexpected.push({ token: record.plan.token, expected, status, errorCode });
    }
  }
  const created = records.filter((r) => r.id).length;
  const terminal = records.filter((r) => r.final).length;

  // ---- job rows and files
  const rowsByToken = new Map<string, Row[]>();
  for (const row of rows) {
    const token = tokenOf(row.prompt);
    rowsByToken.set(token, [...(rowsByToken.get(token) ?? []), row]);
  }
  const createdTwice = [...rowsByToken.entries()].filter(([, list]) => list.length > 1).map((
    [token],
  ) => token);
  const rowByTask = new Map(
    rows.filter((row) => row.provider_task_id).map((row) => [row.provider_task_id!, row]),
  );
  const storedFiles = new Map(
    files.filter((f) => f.path.startsWith("results/") && !f.path.endsWith(".tmp")).map((
      f,
    ) => [f.path, f.size]),
  );
  const hasImage = (row: Row) =>
    row.status === "succeeded" && !!row.result_path && (storedFiles.get(row.result_path) ?? 0) > 0;
  const rowIds = new Set(rows.map((row) => row.id));
  const orphanInputFiles =
    files.filter((f) => f.path.startsWith("inputs/") && !rowIds.has(f.path.split("/")[2])).length;

  // ---- what BFL did and was paid for
  const tasksByToken = new Map<string, string[]>();
  const tokenByTask = new Map<string, string>();
  const views = new Map<string, TaskView>();
  let creditsBilled = 0;
  for (const submission of sim.submissions) {
    const token = tokenOf(submission.body.prompt);
    tokenByTask.set(submission.id, token);
    tasksByToken.set(token, [...(tasksByToken.get(token) ?? []), submission.id]);
    const view = sim.task(submission.id);
    if (view) views.set(submission.id, view);
    creditsBilled += submission.cost;
  }
  const duplicateSubmissions = [...tasksByToken.entries()].filter(([, ids]) => ids.length > 1)
    .map(([token, ids]) => ({ token, tasks: ids.length }));
  const lost: SoakReport["images"]["lost"] = [];
  const paidUndelivered = { total: 0, byErrorCode: {} as Record<string, number> };
  const readyViews = [...views.values()].filter((view) => view.status === "Ready");
  for (const view of readyViews) {
    const token = tokenByTask.get(view.id)!;
    const row = rowByTask.get(view.id);
    if (row) {
      if (!hasImage(row)) {
        lost.push({
          task: view.id,
          token,
          jobId: row.id,
          status: row.status,
          errorCode: row.error_code,
          downloads: view.downloads,
        });
      }
      continue;
    }
    const jobRows = rowsByToken.get(token) ?? [];
    const owner = jobRows.length === 1 ? jobRows[0] : undefined;
    if (
      owner && owner.status === "failed" && UNKNOWN_OUTCOME_CODES.includes(owner.error_code ?? "")
    ) {
      paidUndelivered.total++;
      bump(paidUndelivered.byErrorCode, owner.error_code!);
    } else {
      lost.push({
        task: view.id,
        token,
        jobId: owner?.id ?? null,
        status: owner?.status ?? null,
        errorCode: owner?.error_code ?? null,
        downloads: view.downloads,
      });
    }
  }

  // ---- webhooks, from the simulator's per-task records
  const webhooks = {
    sent: sim.counts.webhooksSent,
    tasksDropped: 0,
    tasksDuplicated: 0,
    failedDeliveries: 0,
    non2xxAnswers: {} as Record<string, number>,
  };
  for (const view of views.values()) {
    if (!view.webhookUrl || view.status === "Pending") continue;
    if (view.webhookAttempts.length === 0) webhooks.tasksDropped++;
    if (view.webhookAttempts.length > 1) webhooks.tasksDuplicated++;
    for (const attempt of view.webhookAttempts) {
      if (attempt.error) webhooks.failedDeliveries++;
      else if (attempt.status !== undefined && (attempt.status < 200 || attempt.status >= 300)) {
        bump(webhooks.non2xxAnswers, String(attempt.status));
      }
    }
  }

  // ---- queue order, from the rows' created_at / submitted_at
  const submitted = rows.filter((row) => row.submitted_at);
  const overtakenBy = new Map<Row, number>();
  for (const a of submitted) {
    const newerFirst = submitted.filter((b) =>
      b.user_id === a.user_id && b.created_at > a.created_at && b.submitted_at! < a.submitted_at!
    ).length;
    if (newerFirst > 0) {
      overtakenBy.set(a, newerFirst);
    }
  }
  const waitOf = (row: Row) => row.submitted_at!.getTime() - row.created_at.getTime();
  const worstRow = submitted.reduce<Row | undefined>(
    (worst, row) => (!worst || waitOf(row) > waitOf(worst) ? row : worst),
    undefined,
  );
  const queue: SoakReport["queue"] = {
    waitMs: summarize(submitted.map(waitOf)),
    overtaken: overtakenBy.size,
    worst: worstRow
      ? {
        token: tokenOf(worstRow.prompt),
        waitMs: waitOf(worstRow),
        newerOfSameUserFirst: overtakenBy.get(worstRow) ?? 0,
      }
      : null,
  };

  // ---- uploads, from the server's log lines
  const duplicateUploads = [...server.imageStored.entries()].filter(([, n]) => n > 1).map((
    [jobId, writes],
  ) => ({ jobId, writes }));
  const imageStoredLines = [...server.imageStored.values()].reduce((a, b) => a + b, 0);

  const jobsReport: SoakReport["jobs"] = {
    planned: records.length,
    created,
    rejectedByApi,
    gaveUp,
    terminal,
    nonTerminal: created - terminal,
    byStatus,
    byErrorCode,
    byModel,
    unexpected,
    createdTwice,
    nonTerminalRows:
      rows.filter((row) => !(TERMINAL as readonly string[]).includes(row.status)).length,
  };
  const targets: Target[] = [
    {
      name: "every job terminal",
      pass: created === records.length && terminal === created && jobsReport.nonTerminalRows === 0,
      value: `${terminal}/${records.length}`,
    },
    { name: "0 images lost", pass: lost.length === 0, value: String(lost.length) },
    {
      name: "0 duplicate provider submissions",
      pass: duplicateSubmissions.length === 0,
      value: String(duplicateSubmissions.length),
    },
    {
      name: "0 duplicate uploads",
      pass: duplicateUploads.length === 0,
      value: String(duplicateUploads.length),
    },
    {
      name: "0 jobs created twice",
      pass: createdTwice.length === 0,
      value: String(createdTwice.length),
    },
  ];
  return {
    store: options.store,
    options: {
      jobs: options.jobs,
      users: options.users,
      restarts: options.restarts,
      seed: options.seed,
      deadlineMs: options.deadlineMs,
      readyAfterMs: options.readyAfterMs,
    },
    wallTimeMs: 0,
    workloadMs: 0,
    jobs: jobsReport,
    images: {
      filesStored: storedFiles.size,
      rowsWithResultPath: rows.filter((row) => row.result_path).length,
      servedThroughSignedUrl: records.filter((r) => r.imageServed).length,
      succeededWithoutFile: rows.filter((row) => row.status === "succeeded" && !hasImage(row)).map((
        row,
      ) => row.id),
      readyTasks: readyViews.length,
      lost,
      paidUndelivered,
      tempFilesLeft: files.filter((f) => f.path.endsWith(".tmp")).length,
      orphanInputFiles,
    },
    provider: {
      submitRequests: sim.counts.submitRequests,
      accepted: sim.counts.accepted,
      rejected: { ...sim.counts.rejected },
      duplicateSubmissions,
      jobsWithoutAcceptedTask: rows.filter((row) => !tasksByToken.has(tokenOf(row.prompt))).length,
      polls: sim.counts.polls,
      misroutedPolls: sim.counts.misroutedPolls,
      downloads: sim.counts.downloads,
      creditsBilled,
      perJob: {
        submits: summarize(rows.map((row) => row.submit_attempts)),
        polls: summarize(rows.map((row) => row.poll_count)),
        downloadsPerReadyTask: summarize(readyViews.map((view) => view.downloads)),
      },
      webhooks,
    },
    uploads: { imageStoredLines, duplicateUploads },
    queue,
    faults: input.faults.stats,
    restarts: input.restarts,
    client: ctx.stats,
    server: {
      incarnations: server.incarnations,
      events: Object.fromEntries(
        [...server.events.entries()].sort(([a], [b]) => a.localeCompare(b)),
      ),
      notableErrors: server.notableErrors,
    },
    targets,
    pass: targets.every((target) => target.pass),
    definitions: DEFINITIONS,
    keptDir: null,
    code: "",
    timeline: [],
  };
}

// ------------------------------------------------------------------ printing

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const list = (counts: Record<string, number>) =>
  Object.entries(counts).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${v}`).join(", ") ||
  "none";
const stat = (s: Summary) => `mean ${s.mean.toFixed(2)}, p50 ${s.p50}, p95 ${s.p95}, max ${s.max}`;

/** The report as the lines `deno task soak` prints. */
export function formatReport(report: SoakReport): string {
  const { jobs, images, provider, uploads, client } = report;
  const storeName = report.store === "embedded"
    ? "embedded (PGlite + folder)"
    : "PostgreSQL 15 + folder";
  const lines = [
    `== soak on ${storeName}: ${report.options.jobs} jobs, ${report.options.users} users, ` +
    `${report.restarts.length}/${report.options.restarts} SIGKILL restarts, seed ${report.options.seed}, code ${report.code} ==`,
    `wall time              ${seconds(report.wallTimeMs)} (workload ${
      seconds(report.workloadMs)
    }: first create until every job was terminal or the deadline passed)`,
    `jobs                   ${jobs.planned} planned, ${jobs.created} created (202), rejected ${
      list(jobs.rejectedByApi)
    }, gave up ${jobs.gaveUp}`,
    `terminal               ${jobs.terminal}/${jobs.planned}: ${
      list(jobs.byStatus)
    }; rows not terminal ${jobs.nonTerminalRows}`,
    `  by error code        ${list(jobs.byErrorCode)}`,
    ...Object.entries(jobs.byModel).map(([model, counts]) =>
      `  ${model.padEnd(20)} ${list(counts)}`
    ),
    `  unexpected outcomes  ${jobs.unexpected.length}${
      jobs.unexpected.length
        ? `: ${
          jobs.unexpected.slice(0, 5).map((u) => `${u.token} ${u.status}/${u.errorCode}`).join(", ")
        }`
        : ""
    }`,
    `images stored          ${images.filesStored} files in DATA_DIR/images/results, ${images.rowsWithResultPath} rows with result_path, ` +
    `${images.servedThroughSignedUrl} downloaded by clients via signed URL; succeeded without file ${images.succeededWithoutFile.length}`,
    `images lost            ${images.lost.length} of ${images.readyTasks} Ready tasks${
      images.lost.length
        ? `: ${
          images.lost.slice(0, 5).map((l) =>
            `${l.token} (job ${l.status}/${l.errorCode}, ${l.downloads} downloads)`
          ).join(", ")
        }`
        : ""
    }`,
    `paid, not delivered    ${images.paidUndelivered.total} (submit answer never reached the service: ${
      list(images.paidUndelivered.byErrorCode)
    })`,
    `duplicate submissions  ${provider.duplicateSubmissions.length} jobs with >1 accepted BFL task (${provider.accepted} accepted submissions)`,
    `duplicate uploads      ${uploads.duplicateUploads.length} jobs with >1 job.image_stored line (${uploads.imageStoredLines} lines)`,
    `jobs created twice     ${jobs.createdTwice.length}`,
    `provider calls         submits ${provider.submitRequests} (${
      (provider.submitRequests / Math.max(1, jobs.created)).toFixed(2)
    }/job; ` +
    `accepted ${provider.accepted}; not accepted: ${
      list(provider.rejected)
    }), polls ${provider.polls} ` +
    `(${
      (provider.polls / Math.max(1, jobs.created)).toFixed(2)
    }/job), downloads ${provider.downloads}, misrouted polls ${provider.misroutedPolls}, ` +
    `credits billed ${provider.creditsBilled}`,
    `  per job              submits: ${stat(provider.perJob.submits)}`,
    `                       polls: ${stat(provider.perJob.polls)}`,
    `                       downloads per Ready task: ${
      stat(provider.perJob.downloadsPerReadyTask)
    }`,
    `  no accepted task     ${provider.jobsWithoutAcceptedTask} jobs (submits refused, or dropped before BFL took them)`,
    `queue wait             created to accepted submit: p50 ${
      seconds(report.queue.waitMs.p50)
    }, p95 ${seconds(report.queue.waitMs.p95)}, ` +
    `max ${seconds(report.queue.waitMs.max)}${
      report.queue.worst
        ? ` (${report.queue.worst.token}, overtaken by ${report.queue.worst.newerOfSameUserFirst} newer jobs of its user)`
        : ""
    }; ${report.queue.overtaken} jobs submitted after a newer job of the same user`,
    `webhooks               sent ${provider.webhooks.sent}; tasks whose webhook was dropped ${provider.webhooks.tasksDropped}, ` +
    `duplicated ${provider.webhooks.tasksDuplicated}; deliveries that failed (server down) ${provider.webhooks.failedDeliveries}; ` +
    `non-2xx answers ${list(provider.webhooks.non2xxAnswers)}`,
    `faults injected        ${
      Object.entries(report.faults).map(([name, s]) =>
        `${name} ×${s.armed}${
          s.consumed !== undefined
            ? ` (${s.consumed} calls hit)`
            : s.calls !== undefined
            ? ` (${s.calls} calls)`
            : ""
        }`
      ).join("; ")
    }`,
    `restarts               ${
      report.restarts.map((r, i) =>
        `#${i + 1} ${r.killAt}${r.landed === false ? " (missed its moment)" : ""} at ${
          seconds(r.atMs)
        } ` +
        `(${r.afterCreated} created, ${r.terminalBefore} terminal), down ${seconds(r.downMs)}`
      ).join("; ") ||
      "none"
    }`,
    `clients                create requests ${client.createRequests} (replayed ${client.replayed}), 429 honoured ${client.rateLimited}, ` +
    `network errors ${client.networkErrors}, HTTP errors ${
      list(client.httpStatus)
    }, status reads ${client.statusReads}, ` +
    `image download requests ${client.imageDownloads} (gave up ${client.imageDownloadFailures})`,
    `leftovers              temp files ${images.tempFilesLeft}, orphaned input files ${images.orphanInputFiles}`,
    `BFL tasks in flight    mean per 10 s (| = a restart in that window): ${
      report.timeline.map((w) => `${w.restart ? "| " : ""}${w.bflActive}`).join(" ")
    }`,
    `server events          ${
      list(Object.fromEntries(
        Object.entries(report.server.events).filter(([name]) =>
          /^(job|webhook|sweep)\.|unhandled/.test(name)
        ),
      ))
    }`,
    `server                 ${report.server.incarnations} incarnations; notable warn/error lines ${report.server.notableErrors.length}${
      report.server.notableErrors.length
        ? `: ${report.server.notableErrors.slice(0, 3).map((e) => JSON.stringify(e)).join(" | ")}`
        : ""
    }`,
    ...(report.keptDir ? [`kept                   ${report.keptDir} (data/, server.log)`] : []),
    ...report.targets.map((t) => `${t.pass ? "PASS" : "FAIL"}  ${t.name} (${t.value})`),
  ];
  return lines.join("\n");
}

/** The definitions behind the figures, printed once after the reports. */
export function formatDefinitions(): string {
  return [
    "Definitions:",
    ...Object.entries(DEFINITIONS).map(([name, text]) => `- ${name}: ${text}.`),
  ].join("\n");
}
