// The sweeper function (POST /sweeper, Bearer SWEEPER_SECRET, 202 then a background sweep) and the
// sweep itself: concurrent sweepers, the crash policy for `submitting`, and job timeouts.
import assert from "node:assert/strict";
import { CreateJobRequest } from "../shared/api/job-schemas.ts";
import { BflClient } from "../shared/bfl/bfl-client.ts";
import type { JobRow } from "../shared/jobs/job-row.ts";
import type { RunnerDeps } from "../shared/jobs/job-runner.ts";
import { sweep, type SweepReport } from "../shared/jobs/sweep.ts";
import { createSweeperApp } from "../shared/jobs/sweeper-app.ts";
import { applyMigrations } from "../shared/store/apply-migrations.ts";
import type { JobStore } from "../shared/store/job-store.ts";
import { openPglite } from "../shared/store/pglite-client.ts";
import type { SqlClient } from "../shared/store/sql-client.ts";
import { type Harness, type HarnessOptions, startHarness } from "./support/harness.ts";

// One in-memory database for the whole file (opening PGlite costs seconds, and it keeps a timer
// until closed, so it lives inside one Deno.test whose steps are the cases). Every case empties the
// jobs table first and gets its own simulator and image folder.
let database: SqlClient | undefined;
const cases: Deno.TestStepDefinition[] = [];
const test = (name: string, fn: () => Promise<void>, options: { ignore?: boolean } = {}) =>
  void cases.push({ name, fn, ...options });

const SECRET = "s3cret";

interface SweeperHarness extends Harness {
  /** Work the app handed to its `background` seam, in order. */
  collected: Promise<unknown>[];
  /** POSTs /sweeper through the app; the body is consumed. */
  post(
    authorization?: string,
    method?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
}

async function start(options: HarnessOptions = {}): Promise<SweeperHarness> {
  const sql = database;
  assert.ok(sql, "the shared database is open");
  await sql.query("delete from public.image_jobs");
  const h = await startHarness({ ...options, sql });
  // Deno.serve's shutdown() waits for a connection that never sent a request, and a pooled fetch
  // client can leave one behind when concurrent requests race for a connection; the simulator's
  // close() then stalls for minutes. So the service's calls to BFL use a client that never reuses
  // connections (same BflClient, same settings).
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const { config } = h.services;
  h.services.runner.bfl = new BflClient({
    apiKey: config.bflApiKey!,
    apiUrl: config.bflApiUrl,
    alphaApiUrl: config.bflAlphaApiUrl,
    trustedOrigins: config.bflTrustedOrigins,
    fetch: (input, init) => fetch(input, { ...init, client }),
  });
  const close = h.close;
  h.close = async () => {
    try {
      await close();
    } finally {
      client.close();
    }
  };
  const collected: Promise<unknown>[] = [];
  const app = createSweeperApp({ services: h.services, background: (p) => void collected.push(p) });
  const post = async (authorization?: string, method = "POST") => {
    const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
    const response = await app.request("/sweeper", { method, headers });
    return { status: response.status, body: await response.json() };
  };
  return Object.assign(h, { collected, post });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A queued job that nothing has submitted yet (due at once). */
const queuedJob = (h: Harness, prompt = "x") =>
  h.services.jobs.create(
    h.services.config.anonymousUserId!,
    CreateJobRequest.parse({ prompt }),
    {},
    { submitInline: false },
  );

async function row(h: Harness, id: string): Promise<JobRow> {
  const job = await h.services.store.get(id);
  assert.ok(job, `job ${id} exists`);
  return job;
}

const rows = (h: Harness, jobs: JobRow[]) => Promise.all(jobs.map((job) => row(h, job.id)));

test("without SWEEPER_SECRET configured the sweeper answers 503 naming it", async () => {
  const h = await start();
  try {
    const job = await queuedJob(h);
    for (const authorization of [`Bearer ${SECRET}`, undefined]) {
      const answer = await h.post(authorization);
      assert.equal(answer.status, 503);
      const error = answer.body.error as Record<string, string>;
      assert.equal(error.code, "sweeper_not_configured");
      assert.match(error.message, /SWEEPER_SECRET/);
    }
    assert.equal(h.collected.length, 0, "no sweep scheduled");
    assert.equal((await row(h, job.id)).status, "queued");
    assert.equal(h.sim.counts.submitRequests, 0);
  } finally {
    await h.close();
  }
});

test("a wrong or missing sweeper secret answers 401 and schedules no work", async () => {
  const h = await start({ env: { SWEEPER_SECRET: SECRET } });
  try {
    const job = await queuedJob(h);
    const before = await row(h, job.id);
    const refused = [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "Bearer wrong",
      `Bearer ${SECRET}x`,
      `Bearer ${SECRET.slice(0, -1)}`,
      SECRET,
      `Basic ${SECRET}`,
      `Token ${SECRET}`,
    ];
    for (const authorization of refused) {
      const answer = await h.post(authorization);
      assert.equal(answer.status, 401, `authorization: ${JSON.stringify(authorization)}`);
      assert.equal((answer.body.error as Record<string, string>).code, "invalid_sweeper_secret");
      assert.ok(
        !JSON.stringify(answer.body).includes(SECRET),
        "the answer never echoes the secret",
      );
    }
    // Only POST sweeps.
    const get = await h.post(`Bearer ${SECRET}`, "GET");
    assert.equal(get.status, 404);
    assert.equal(h.collected.length, 0, "no sweep scheduled");
    await sleep(50);
    assert.deepEqual(await row(h, job.id), before, "the queued job was not touched");
    assert.equal(h.sim.counts.submitRequests, 0);
  } finally {
    await h.close();
  }
});

test("the right secret: 202 at once, the background sweep submits due jobs, a later one stores them", async () => {
  const h = await start({ env: { SWEEPER_SECRET: SECRET } });
  try {
    const jobs = await Promise.all([
      queuedJob(h, "one"),
      queuedJob(h, "two"),
      queuedJob(h, "three"),
    ]);
    // BFL is slow to accept: the answer must not wait for it.
    h.sim.faults.submitDelayMs = 500;
    const started = Date.now();
    const answer = await h.post(`Bearer ${SECRET}`);
    assert.equal(answer.status, 202);
    assert.deepEqual(answer.body, { accepted: true });
    assert.ok(Date.now() - started < 500, "answered before BFL did");
    assert.equal(h.collected.length, 1);
    let settled = false;
    const first = h.collected[0].then(() => (settled = true));
    await sleep(0);
    assert.equal(settled, false, "the sweep runs after the answer");
    assert.ok((await rows(h, jobs)).every((job) => job.status !== "running"));

    await first;
    const running = await rows(h, jobs);
    assert.deepEqual(running.map((job) => job.status), ["running", "running", "running"]);
    assert.equal(h.sim.submissions.length, 3);
    assert.deepEqual(h.sim.submissions.map((s) => s.body.prompt).sort(), ["one", "three", "two"]);
    delete h.sim.faults.submitDelayMs;

    // Once BFL is done and the jobs are due again, the next call stores every image.
    await until(
      () => running.every((job) => h.sim.task(job.provider_task_id!)?.status === "Ready"),
      "tasks Ready",
    );
    await until(
      () => running.every((job) => job.next_check_at.getTime() <= Date.now()),
      "jobs due",
    );
    const again = await h.post(`bearer ${SECRET}`); // the scheme is case-insensitive
    assert.equal(again.status, 202);
    assert.equal(h.collected.length, 2);
    await h.collected[1];
    const done = await rows(h, jobs);
    assert.deepEqual(done.map((job) => job.status), ["succeeded", "succeeded", "succeeded"]);
    assert.equal(h.sim.counts.downloads, 3);
    const files = (await h.storedFiles()).filter((path) => path.startsWith("results/"));
    assert.deepEqual(files, done.map((job) => job.result_path).sort());
    assert.equal(h.sim.submissions.length, 3, "nothing was submitted twice");
  } finally {
    await h.close();
  }
});

test("two sweeps at once over the same 30 due jobs never submit a job twice", async () => {
  const h = await start();
  try {
    const jobs: JobRow[] = [];
    for (let i = 0; i < 30; i++) jobs.push(await queuedJob(h, `job ${i}`));
    // Each sweeper records what it claimed, to check that no job is held by both in a round.
    const claimedBy = { a: [] as string[][], b: [] as string[][] };
    const runner = (workerId: "a" | "b"): RunnerDeps => {
      const store = h.services.store;
      const recording: JobStore = Object.create(store);
      recording.claimDue = async (...args) => {
        const claimed = await store.claimDue(...args);
        claimedBy[workerId].push(claimed.map((job) => job.id));
        return claimed;
      };
      return { ...h.services.runner, workerId, store: recording };
    };
    const a = runner("a");
    const b = runner("b");
    const reports: SweepReport[][] = [];
    const deadline = Date.now() + 15_000;
    while (true) {
      const round = await Promise.all([
        sweep(a, { limit: 50, concurrency: 8 }),
        sweep(b, { limit: 50, concurrency: 8 }),
      ]);
      reports.push(round);
      const current = await rows(h, jobs);
      if (current.every((job) => job.status === "succeeded")) break;
      assert.ok(
        Date.now() < deadline,
        `jobs still unfinished: ${JSON.stringify(current.map((job) => job.status))}`,
      );
      await sleep(100);
    }
    for (let i = 0; i < claimedBy.a.length; i++) {
      const both = claimedBy.a[i].filter((id) => claimedBy.b[i].includes(id));
      assert.deepEqual(both, [], `round ${i}: claimed by both sweepers`);
    }
    assert.ok(reports[0][0].claimed + reports[0][1].claimed <= 30);

    assert.equal(h.sim.submissions.length, 30);
    assert.equal(h.sim.counts.accepted, 30);
    assert.equal(new Set(h.sim.submissions.map((s) => s.id)).size, 30, "submission ids are unique");
    const prompts = h.sim.submissions.map((s) => s.body.prompt as string);
    assert.equal(new Set(prompts).size, 30, "each job was submitted once");
    assert.deepEqual(prompts.sort(), jobs.map((job) => job.params.prompt as string).sort());
    const done = await rows(h, jobs);
    assert.equal(new Set(done.map((job) => job.provider_task_id)).size, 30);
    assert.equal(h.sim.counts.downloads, 30);
    // Slots are counted atomically across sweepers: BFL's 24-task limit was never overbooked.
    assert.equal(h.sim.counts.rejected["429"] ?? 0, 0);
    assert.equal(h.sim.counts.submitRequests, 30);
  } finally {
    await h.close();
  }
});

test("a job stuck in submitting after its worker died is failed as submit_interrupted, never resubmitted", async () => {
  const h = await start();
  try {
    const job = await queuedJob(h);
    const { store } = h.services;
    // A worker claims the job and marks it `submitting` (keeping a 1 s lease), then dies before
    // recording BFL's answer.
    assert.ok(await store.claim(job.id, "crashed-worker", 60, false));
    const stuck = await store.transition(job.id, "crashed-worker", ["queued"], {
      status: "submitting",
      submit_attempts: 1,
      lease_owner: "crashed-worker",
      lease_until: new Date(Date.now() + 1000),
    });
    assert.equal(stuck?.status, "submitting");
    assert.equal(stuck?.lease_owner, "crashed-worker");

    // While the lease holds, a sweep leaves the job alone.
    const early = await sweep(h.services.runner);
    assert.equal(early.claimed, 0);
    assert.equal((await row(h, job.id)).status, "submitting");

    await sleep(Math.max(0, stuck!.lease_until!.getTime() - Date.now()) + 150);
    const report = await sweep(h.services.runner);
    assert.equal(report.claimed, 1);
    const failed = await row(h, job.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error_code, "submit_interrupted");
    assert.ok(failed.finished_at);
    assert.equal(failed.lease_owner, null);
    assert.equal(failed.submit_attempts, 1);
    assert.equal(h.sim.counts.submitRequests, 0, "BFL never saw a (second) submit");
    assert.equal(h.sim.submissions.length, 0);

    const after = await sweep(h.services.runner);
    assert.equal(after.claimed, 0, "a finished job is never claimed again");
  } finally {
    await h.close();
  }
});

test("a running job past JOB_TIMEOUT_MS is failed as timed_out by a sweep", async () => {
  const h = await start({
    env: { SWEEPER_SECRET: SECRET, JOB_TIMEOUT_MS: "300" },
    simulator: { readyAfterMs: 5000 },
  });
  try {
    const job = await queuedJob(h);
    assert.equal((await h.post(`Bearer ${SECRET}`)).status, 202);
    await h.collected[0];
    const running = await row(h, job.id);
    assert.equal(running.status, "running");
    const taskId = running.provider_task_id!;

    await sleep(450);
    assert.equal((await h.post(`Bearer ${SECRET}`)).status, 202);
    await h.collected[1];
    const failed = await row(h, job.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error_code, "timed_out");
    assert.ok(failed.finished_at);
    assert.equal(failed.result_path, null);
    assert.equal(h.sim.task(taskId)?.status, "Pending", "BFL had not finished");
  } finally {
    await h.close();
  }
});

// A deadline is enforced only after one more look at BFL: a finished, billed image is never dropped.
test(
  "a job BFL finished before JOB_TIMEOUT_MS is stored, not timed out, even when first polled after it",
  async () => {
    const h = await start({
      env: { SWEEPER_SECRET: SECRET, JOB_TIMEOUT_MS: "300", POLL_INTERVAL_MS: "1000" },
      simulator: { readyAfterMs: 100 },
    });
    try {
      const job = await queuedJob(h);
      assert.equal((await h.post(`Bearer ${SECRET}`)).status, 202);
      await h.collected[0];
      const running = await row(h, job.id);
      assert.equal(running.status, "running");
      const task = h.sim.task(running.provider_task_id!)!;
      // BFL is done (and has billed the task) well within the 300 ms deadline...
      assert.ok(task.readyAt - running.submitted_at!.getTime() < 300);
      // ...but the job's next check (POLL_INTERVAL_MS) falls after it.
      await sleep(Math.max(0, running.next_check_at.getTime() - Date.now()) + 50);
      assert.equal(h.sim.task(task.id)?.status, "Ready");
      assert.equal((await h.post(`Bearer ${SECRET}`)).status, 202);
      await h.collected[1];
      const after = await row(h, job.id);
      assert.equal(after.error_code, null, "BFL finished in time; the image is still downloadable");
      assert.equal(after.status, "succeeded");
      assert.equal(h.sim.counts.downloads, 1);
    } finally {
      await h.close();
    }
  },
);

Deno.test("sweeper", async (t) => {
  database = await openPglite();
  try {
    await applyMigrations(database);
    for (const step of cases) await t.step(step);
  } finally {
    await database.close();
    database = undefined;
  }
});
