// The bfl-webhook receiver end to end: the BFL simulator POSTs to the local server's
// /bfl-webhook/jobs/:id with the per-job X-Webhook-Secret, and the call is only ever a hint.
import assert from "node:assert/strict";
import { BflClient } from "../shared/bfl/bfl-client.ts";
import type { JobRow } from "../shared/jobs/job-row.ts";
import { applyMigrations } from "../shared/store/apply-migrations.ts";
import { openPglite } from "../shared/store/pglite-client.ts";
import type { SqlClient } from "../shared/store/sql-client.ts";
import { type BflSimulator, startBflSimulator } from "./support/bfl-simulator.ts";
import { type Harness, type HarnessOptions, startHarness } from "./support/harness.ts";

// One in-memory database for the whole file (opening PGlite costs seconds, and it keeps a timer
// until closed, so it lives inside one Deno.test whose steps are the cases). Every case empties the
// jobs table first and gets its own simulator, server and image folder.
let database: SqlClient | undefined;
const cases: Deno.TestStepDefinition[] = [];
const test = (name: string, fn: () => Promise<void>, options: { ignore?: boolean } = {}) =>
  void cases.push({ name, fn, ...options });

interface WebhookHarness extends Harness {
  /** The secret sent to BFL for each job, by job id. */
  secrets: Map<string, string>;
  webhookUrl(jobId: string): string;
  /** fetch for the test's own requests (see `start`). */
  send(url: string, init?: RequestInit): Promise<Response>;
}

async function start(
  options: HarnessOptions = {},
  webhookPollIntervalMs = 60_000,
): Promise<WebhookHarness> {
  const sql = database;
  assert.ok(sql, "the shared database is open");
  await sql.query("delete from public.image_jobs");
  const h = await startHarness({ ...options, sql });
  // Deno.serve's shutdown() waits for a connection that never sent a request, and a pooled fetch
  // client can leave one behind when two requests race for a connection (e.g. a test request and
  // the simulator's webhook); the harness's close() then stalls for minutes. So the test's own
  // requests and the service's calls to BFL go through clients that never reuse connections.
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const send = (url: string, init: RequestInit = {}) => fetch(url, { ...init, client });
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
  const secrets = new Map<string, string>();
  const webhookUrl = (jobId: string) =>
    `${h.base.replace("/images", "")}/bfl-webhook/jobs/${jobId}`;
  h.services.runner.webhookFor = (job) => {
    const secret = crypto.randomUUID();
    secrets.set(job.id, secret);
    return { url: webhookUrl(job.id), secret };
  };
  // Large by default, so only the webhook can drive a job to completion.
  h.services.runner.webhookPollIntervalMs = webhookPollIntervalMs;
  return Object.assign(h, { secrets, webhookUrl, send });
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

/** Creates a job over HTTP (submitted inline, so it carries the webhook); returns its id. */
async function createJob(h: WebhookHarness, prompt = "A lighthouse at dusk"): Promise<string> {
  const response = await h.send(`${h.base}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt }),
  });
  const body = await response.json();
  assert.equal(response.status, 202, JSON.stringify(body));
  return body.id;
}

/** The stored row, read directly (no refresh, so no provider poll). */
async function row(h: Harness, id: string): Promise<JobRow> {
  const job = await h.services.store.get(id);
  assert.ok(job, `job ${id} exists`);
  return job;
}

const waitForStatus = (h: Harness, id: string, status: string, timeoutMs = 5000) =>
  until(
    async () => {
      const job = await row(h, id);
      return job.status === status && job;
    },
    `job ${id} to be ${status}`,
    timeoutMs,
  );

/** POSTs a webhook call; the answer's body is always consumed. */
async function postWebhook(
  h: WebhookHarness,
  url: string,
  secret?: string,
  body: unknown = { status: "Ready" },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (secret !== undefined) headers["X-Webhook-Secret"] = secret;
  const response = await h.send(url, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

const resultFiles = async (h: Harness) =>
  (await h.storedFiles()).filter((path) => path.startsWith("results/"));

test("a job with a webhook finishes on BFL's call alone: no client polling, no sweeper, one poll", async () => {
  const h = await start();
  try {
    const id = await createJob(h);
    const job = await waitForStatus(h, id, "succeeded");
    assert.equal(h.sim.counts.polls, 1, "the webhook triggers exactly one poll of BFL");
    assert.ok(h.sim.counts.polls <= 1);
    assert.equal(h.sim.counts.downloads, 1);
    assert.equal(h.sim.counts.webhooksSent, 1);
    assert.deepEqual(await resultFiles(h), [job.result_path]);

    // The submission carried this job's webhook URL and its secret...
    assert.equal(h.sim.submissions.length, 1);
    const submitted = h.sim.submissions[0].body;
    assert.equal(submitted.webhook_url, h.webhookUrl(id));
    assert.equal(submitted.webhook_secret, h.secrets.get(id));
    assert.equal(job.webhook_secret, h.secrets.get(id));
    // ...and the simulator's call (echoing X-Webhook-Secret) was accepted.
    const task = h.sim.task(job.provider_task_id!);
    assert.ok(task);
    await until(() => task.webhookAttempts[0]?.status !== undefined, "the webhook's answer");
    assert.equal(task.webhookAttempts.length, 1);
    assert.equal(task.webhookAttempts[0].status, 200);
  } finally {
    await h.close();
  }
});

test("a wrong or missing webhook secret answers 401 and leaves the job row untouched", async () => {
  const h = await start();
  try {
    // Pending for long enough that nothing else moves the jobs during the test.
    const id = await createJob(h, "slow [sim:ready-after=10000]");
    const other = await createJob(h, "another [sim:ready-after=10000]");
    const before = await row(h, id);
    assert.equal(before.status, "running");
    const polls = h.sim.counts.polls;

    const attempts: [string, string | undefined][] = [
      ["wrong secret", "not-the-secret"],
      ["missing secret", undefined],
      ["empty secret", ""],
      ["another job's secret", h.secrets.get(other)],
      ["secret with a suffix", `${h.secrets.get(id)}x`],
    ];
    for (const [label, secret] of attempts) {
      const answer = await postWebhook(h, h.webhookUrl(id), secret);
      assert.equal(answer.status, 401, label);
      assert.equal(
        (answer.body.error as Record<string, unknown>).code,
        "invalid_webhook_secret",
        label,
      );
      assert.ok(
        !JSON.stringify(answer.body).includes(h.secrets.get(id)!),
        `${label}: the answer leaks no secret`,
      );
    }
    const after = await row(h, id);
    assert.equal(after.status, before.status);
    assert.equal(after.updated_at.getTime(), before.updated_at.getTime());
    assert.equal(after.poll_count, before.poll_count);
    assert.deepEqual(after, before);
    assert.equal(h.sim.counts.polls, polls, "a refused call never polls BFL");
    assert.equal(h.sim.counts.downloads, 0);
  } finally {
    await h.close();
  }
});

test("unknown, malformed and finished job ids are acknowledged with 200 and change nothing", async () => {
  const h = await start();
  try {
    const base = h.base.replace("/images", "");
    for (const id of [crypto.randomUUID(), "not-a-uuid", "1%27%20or%201%3D1"]) {
      const answer = await postWebhook(h, `${base}/bfl-webhook/jobs/${id}`, "whatever");
      assert.equal(answer.status, 200, id);
      assert.deepEqual(answer.body, { received: true, changed: false }, id);
    }
    // Also reachable under the deployed prefix.
    const prefixed = await postWebhook(
      h,
      `${base}/functions/v1/bfl-webhook/jobs/${crypto.randomUUID()}`,
      "x",
    );
    assert.equal(prefixed.status, 200);
    assert.deepEqual(prefixed.body, { received: true, changed: false });

    const id = await createJob(h);
    const done = await waitForStatus(h, id, "succeeded");
    const task = h.sim.task(done.provider_task_id!)!;
    await until(() => task.webhookAttempts[0]?.status !== undefined, "the webhook's answer");
    const counts = { ...h.sim.counts };
    for (const secret of [h.secrets.get(id), "wrong", undefined]) {
      const answer = await postWebhook(h, h.webhookUrl(id), secret);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { received: true, changed: false });
    }
    assert.deepEqual(await row(h, id), done, "a finished job is not touched");
    assert.equal(h.sim.counts.polls, counts.polls, "no extra provider poll");
    assert.equal(h.sim.counts.downloads, counts.downloads);
  } finally {
    await h.close();
  }
});

test("duplicate webhooks: the image is downloaded and stored once", async () => {
  const h = await start();
  try {
    h.sim.faults.webhook = "duplicate";
    const id = await createJob(h);
    const job = await waitForStatus(h, id, "succeeded");
    const task = h.sim.task(job.provider_task_id!)!;
    await until(
      () =>
        task.webhookAttempts.length === 2 &&
        task.webhookAttempts.every((a) => a.status !== undefined),
      "both webhook calls to be answered",
    );
    assert.deepEqual(task.webhookAttempts.map((a) => a.status), [200, 200]);
    assert.equal(h.sim.counts.downloads, 1);
    assert.equal(h.sim.counts.polls, 1);
    assert.deepEqual(await resultFiles(h), [job.result_path]);
    assert.deepEqual(await row(h, id), job);
  } finally {
    await h.close();
  }
});

test("20 concurrent replays of a valid webhook for a just-Ready job: one download, one file", async () => {
  const h = await start();
  try {
    h.sim.faults.webhook = "drop"; // the replays below are the only calls
    const id = await createJob(h);
    const running = await row(h, id);
    assert.equal(running.status, "running");
    await until(
      () => h.sim.task(running.provider_task_id!)?.status === "Ready",
      "the task to be Ready",
    );

    const answers = await Promise.all(
      Array.from({ length: 20 }, () => postWebhook(h, h.webhookUrl(id), h.secrets.get(id))),
    );
    assert.deepEqual(answers.map((a) => a.status), Array(20).fill(200));
    assert.equal(
      answers.filter((a) => a.body.changed === true).length,
      1,
      "exactly one call advanced the job",
    );
    const job = await row(h, id);
    assert.equal(job.status, "succeeded");
    assert.equal(h.sim.counts.downloads, 1);
    assert.equal(h.sim.task(running.provider_task_id!)!.downloads, 1);
    assert.deepEqual(await resultFiles(h), [job.result_path]);
  } finally {
    await h.close();
  }
});

test("a lost webhook: the fallback poll of the sweep loop still finishes the job", async () => {
  const h = await start({ sweep: true }, 200);
  try {
    h.sim.faults.webhook = "drop";
    const id = await createJob(h);
    const job = await waitForStatus(h, id, "succeeded", 8000);
    assert.ok(job.webhook_secret, "the job was submitted with a webhook");
    assert.equal(h.sim.submissions[0].body.webhook_url, h.webhookUrl(id));
    assert.equal(h.sim.counts.webhooksSent, 0, "the webhook was never sent");
    assert.equal(h.sim.counts.downloads, 1);
    assert.deepEqual(await resultFiles(h), [job.result_path]);
  } finally {
    await h.close();
  }
});

test("a forged webhook body is never trusted: its result.sample is never fetched", async () => {
  let evilRequests = 0;
  const evil = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    evilRequests++;
    await req.body?.cancel();
    return new Response("not an image", { status: 200, headers: { "content-type": "image/jpeg" } });
  });
  const evilOrigin = `http://127.0.0.1:${evil.addr.port}`;
  let sim: BflSimulator | undefined;
  let h: WebhookHarness | undefined;
  try {
    sim = await startBflSimulator({ readyAfterMs: 200 });
    // Even with the evil host among the trusted origins, the receiver must not use the body.
    h = await start({
      sim,
      env: { BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin},${evilOrigin}` },
    });
    sim.faults.webhook = "drop";
    const id = await createJob(h, "forgery target [sim:ready-after=600]");
    const taskId = (await row(h, id)).provider_task_id!;
    const forged = (sample: string) => ({
      id: taskId,
      status: "Ready",
      result: { sample, prompt: "x", seed: 1 },
      progress: null,
      details: null,
      preview: null,
    });

    // Wrong secret: refused outright.
    const refused = await postWebhook(
      h,
      h.webhookUrl(id),
      "guess",
      forged(`${evilOrigin}/results/${taskId}/sample.jpeg`),
    );
    assert.equal(refused.status, 401);
    // Right secret while BFL still says Pending: one poll, nothing stored.
    const early = await postWebhook(
      h,
      h.webhookUrl(id),
      h.secrets.get(id),
      forged(`${evilOrigin}/early.jpeg`),
    );
    assert.equal(early.status, 200);
    assert.equal(early.body.changed, false);
    const pending = await row(h, id);
    assert.equal(pending.status, "running");
    assert.equal(pending.result_path, null);
    assert.equal(sim.counts.downloads, 0);

    // Right secret once Ready: the image comes from BFL's own result, not from the body.
    await until(() => sim!.task(taskId)?.status === "Ready", "the task to be Ready");
    const late = await postWebhook(
      h,
      h.webhookUrl(id),
      h.secrets.get(id),
      forged(`${evilOrigin}/late.jpeg`),
    );
    assert.equal(late.status, 200);
    assert.equal(late.body.changed, true);
    const job = await row(h, id);
    assert.equal(job.status, "succeeded");
    assert.equal(sim.counts.downloads, 1, "downloaded from BFL's delivery host");
    const stored = await h.services.storage.get(job.result_path!);
    assert.ok(stored && stored.bytes.byteLength > 100, "the real image was stored");
    assert.equal(evilRequests, 0, "the forged sample URL was never requested");
  } finally {
    await h?.close();
    await sim?.close();
    await evil.shutdown();
  }
});

test("the job's view never includes its webhook secret", async () => {
  const h = await start();
  try {
    const id = await createJob(h);
    const secret = h.secrets.get(id)!;
    assert.ok(secret);
    const read = async (url: string) => {
      const response = await h.send(url);
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return text;
    };
    const running = await read(`${h.base}/jobs/${id}`);
    assert.ok(running.includes(id));
    assert.ok(!running.includes(secret), "running view leaks the webhook secret");
    assert.ok(!(await read(`${h.base}/jobs`)).includes(secret), "list leaks the webhook secret");
    await waitForStatus(h, id, "succeeded");
    const finished = await read(`${h.base}/jobs/${id}`);
    assert.ok(finished.includes('"succeeded"'));
    assert.ok(!finished.includes(secret), "finished view leaks the webhook secret");
    assert.ok(!(await read(`${h.base}/jobs`)).includes(secret), "list leaks the webhook secret");
  } finally {
    await h.close();
  }
});

Deno.test("bfl-webhook receiver", async (t) => {
  database = await openPglite();
  try {
    await applyMigrations(database);
    for (const step of cases) await t.step(step);
  } finally {
    await database.close();
    database = undefined;
  }
});
