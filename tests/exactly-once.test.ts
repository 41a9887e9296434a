// Never paid twice, never stored twice: idempotent creation, concurrent status reads of a job that
// has just become Ready, per-user limits and fair provider slots — through HTTP, with the simulator.
import assert from "node:assert/strict";
import type { ImageStorage } from "../shared/storage/image-storage.ts";
import { startHarness } from "./support/harness.ts";
import { makePng } from "./support/test-images.ts";

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wraps storage so the test can count writes per path. */
function countingStorage(inner: ImageStorage) {
  const puts = new Map<string, number>();
  const storage: ImageStorage = {
    put: async (path, bytes, type) => {
      puts.set(path, (puts.get(path) ?? 0) + 1);
      await inner.put(path, bytes, type);
    },
    get: (path) => inner.get(path),
    remove: (paths) => inner.remove(paths),
    signedUrl: (path, ttl, base) => inner.signedUrl(path, ttl, base),
  };
  return { storage, puts };
}

Deno.test("Idempotency-Key: the same key and body give the same job and one provider call", async () => {
  const h = await startHarness();
  try {
    const key = crypto.randomUUID();
    const first = await fetch(`${h.base}/jobs`, post({ prompt: "a red kite" }, { "idempotency-key": key }));
    const firstBody = await first.json();
    assert.equal(first.status, 202);
    assert.equal(first.headers.get("idempotent-replayed"), null);
    // A flaky mobile network: the client retries the same request, several times, some at once.
    const retries = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${h.base}/jobs`, post({ prompt: "a red kite" }, { "idempotency-key": key }))),
    );
    for (const retry of retries) {
      const body = await retry.json();
      assert.equal(retry.status, 202);
      assert.equal(retry.headers.get("idempotent-replayed"), "true");
      assert.equal(body.id, firstBody.id);
    }
    assert.equal(h.sim.counts.submitRequests, 1, "BFL was called once");
    const listed = await (await fetch(`${h.base}/jobs`)).json();
    assert.equal(listed.data.length, 1, "one job row");
  } finally {
    await h.close();
  }
});

Deno.test("Idempotency-Key: concurrent first requests with one key still create one job", async () => {
  const h = await startHarness();
  try {
    const key = "order-42";
    const form = () => {
      const f = new FormData();
      f.set("prompt", "edit me");
      f.set("input_image", new File([makePng(16, 16)], "a.png"));
      return f;
    };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${h.base}/jobs`, { method: "POST", body: form(), headers: { "idempotency-key": key } })),
    );
    const ids = new Set<string>();
    for (const answer of answers) {
      assert.equal(answer.status, 202, await answer.clone().text());
      ids.add((await answer.json()).id);
    }
    assert.equal(ids.size, 1);
    assert.equal(h.sim.counts.submitRequests, 1);
    const inputs = (await h.storedFiles()).filter((path) => path.startsWith("inputs/"));
    assert.equal(inputs.length, 1, `losers leave no input copies behind: ${inputs}`);
  } finally {
    await h.close();
  }
});

Deno.test("Idempotency-Key: the same key with a different body is a 409; empty or over 255 characters is a 400", async () => {
  const h = await startHarness();
  try {
    const first = await fetch(`${h.base}/jobs`, post({ prompt: "one" }, { "idempotency-key": "k1" }));
    await first.body?.cancel();
    const conflict = await fetch(`${h.base}/jobs`, post({ prompt: "two" }, { "idempotency-key": "k1" }));
    assert.equal(conflict.status, 409);
    assert.equal((await conflict.json()).error.code, "idempotency_key_reused");
    for (const bad of ["", "   ", "x".repeat(256)]) {
      const response = await fetch(`${h.base}/jobs`, post({ prompt: "three" }, { "idempotency-key": bad }));
      assert.equal(response.status, 400, `key of length ${bad.length}`);
      const body = await response.json();
      assert.equal(body.error.details[0].field, "Idempotency-Key");
    }
    const ok = await fetch(`${h.base}/jobs`, post({ prompt: "four" }, { "idempotency-key": "x".repeat(255) }));
    assert.equal(ok.status, 202);
    await ok.body?.cancel();
    assert.equal(h.sim.counts.submitRequests, 2);
  } finally {
    await h.close();
  }
});

Deno.test("100 concurrent reads of a job that just became Ready: one download, one write, one transition", async () => {
  const h = await startHarness({ simulator: { readyAfterMs: 150 } });
  try {
    const { storage, puts } = countingStorage(h.services.runner.storage);
    const accepted = await (await fetch(`${h.base}/jobs`, post({ prompt: "crowd" }))).json();
    h.services.runner.storage = storage;
    await sleep(250); // Ready at the provider; nobody has looked yet
    const reads = await Promise.all(Array.from({ length: 100 }, () => fetch(accepted.url)));
    const statuses = await Promise.all(reads.map(async (r) => (await r.json()).status));
    assert.ok(statuses.every((s) => ["running", "succeeded"].includes(s)), String(new Set(statuses)));
    const final = await (await fetch(accepted.url)).json();
    assert.equal(final.status, "succeeded");
    assert.equal(h.sim.counts.downloads, 1, "one download");
    assert.deepEqual([...puts.values()], [1], "one storage write");
    const transitions = h.logs.filter((line) => line.includes('"job.transition"') && line.includes(accepted.id) && line.includes('"to":"succeeded"'));
    assert.equal(transitions.length, 1, "one state transition");
  } finally {
    await h.close();
  }
});

Deno.test("per-user limits answer 429 with Retry-After and create nothing", async () => {
  const h = await startHarness({ env: { MAX_ACTIVE_JOBS_PER_USER: "2", MAX_JOBS_PER_DAY: "3" }, simulator: { readyAfterMs: 60_000 } });
  try {
    for (let i = 0; i < 2; i++) await (await fetch(`${h.base}/jobs`, post({ prompt: `p${i}` }))).body?.cancel();
    const busy = await fetch(`${h.base}/jobs`, post({ prompt: "third" }));
    assert.equal(busy.status, 429);
    assert.ok(Number(busy.headers.get("retry-after")) > 0);
    assert.equal((await busy.json()).error.code, "too_many_active_jobs");
    assert.equal(h.sim.counts.submitRequests, 2);

    // Finish them (moderated) so the active limit frees; the daily limit still counts them.
    await h.sql.query("update public.image_jobs set status = 'failed', finished_at = now()");
    await (await fetch(`${h.base}/jobs`, post({ prompt: "third" }))).body?.cancel();
    const daily = await fetch(`${h.base}/jobs`, post({ prompt: "fourth" }));
    assert.equal(daily.status, 429);
    assert.equal((await daily.json()).error.code, "daily_limit_reached");
    const retryAfter = Number(daily.headers.get("retry-after"));
    assert.ok(retryAfter > 23 * 3600 && retryAfter <= 24 * 3600, String(retryAfter));
  } finally {
    await h.close();
  }
});

Deno.test("fair slots: one user's 30 queued jobs do not starve another user's one", async () => {
  const h = await startHarness({
    env: { MAX_ACTIVE_JOBS_PER_USER: "0", MAX_JOBS_PER_DAY: "0", SERVER_API_KEYS: "srv" },
    simulator: { readyAfterMs: 60_000 },
  });
  try {
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const as = (user: string) => ({ apikey: "srv", "x-user-id": user });
    // Alice fills BFL's 24 slots and queues 6 more; then Bob asks for one image.
    // Her first two finish quickly at BFL; the rest take a minute.
    for (let i = 0; i < 30; i++) {
      const prompt = i < 2 ? `alice ${i} [sim:ready-after=200]` : `alice ${i}`;
      await (await fetch(`${h.base}/jobs`, post({ prompt }, as(alice)))).body?.cancel();
    }
    const bobJob = await (await fetch(`${h.base}/jobs`, post({ prompt: "bob" }, as(bob)))).json();
    assert.equal(bobJob.status, "queued");
    assert.equal(h.sim.counts.accepted, 24);

    // Two slots free up: Alice's first two jobs finish and are stored by a sweep; the next sweep
    // hands out the two free slots.
    await sleep(300);
    await h.sql.query("update public.image_jobs set next_check_at = now() where status in ('queued', 'running')");
    const { sweep } = await import("../shared/jobs/sweep.ts");
    await sweep(h.services.runner);
    await h.sql.query("update public.image_jobs set next_check_at = now() where status = 'queued'");
    await sweep(h.services.runner);
    const bobNow = await h.services.store.get(bobJob.id);
    assert.equal(bobNow?.status, "running", "Bob's only job got one of the two free slots");
    const aliceRunning = await h.sql.query("select count(*)::int as n from public.image_jobs where user_id = $1 and status = 'running'", [alice]);
    assert.equal((aliceRunning[0] as { n: number }).n, 23, "Alice got the other one");
    assert.equal(h.sim.counts.accepted, 26);
    assert.equal(h.sim.counts.rejected["429"] ?? 0, 0, "no slot was overbooked");
  } finally {
    await h.close();
  }
});

Deno.test("a new job does not take a freed slot ahead of older queued jobs", async () => {
  const h = await startHarness({ env: { MAX_ACTIVE_JOBS_PER_USER: "0", MAX_JOBS_PER_DAY: "0" }, simulator: { readyAfterMs: 60_000 } });
  try {
    for (let i = 0; i < 24; i++) {
      const prompt = i === 0 ? "first [sim:ready-after=100]" : `filler ${i}`;
      await (await fetch(`${h.base}/jobs`, post({ prompt }))).body?.cancel();
    }
    const older = await (await fetch(`${h.base}/jobs`, post({ prompt: "older" }))).json();
    assert.equal(older.status, "queued");
    // The first job finishes and is stored: one slot is free.
    await sleep(200);
    await h.sql.query("update public.image_jobs set next_check_at = now() where status = 'running'");
    const { sweep } = await import("../shared/jobs/sweep.ts");
    await h.sql.query("update public.image_jobs set next_check_at = now() + interval '1 hour' where status = 'queued'");
    await sweep(h.services.runner);
    const newer = await (await fetch(`${h.base}/jobs`, post({ prompt: "newer" }))).json();
    assert.equal(newer.status, "queued", "the new job waits its turn");
    // Reading a queued job does not submit it either.
    assert.equal((await (await fetch(newer.url)).json()).status, "queued");
    await h.sql.query("update public.image_jobs set next_check_at = now() where status = 'queued'");
    await sweep(h.services.runner);
    assert.equal((await h.services.store.get(older.id))?.status, "running", "the older job got the slot");
    assert.equal((await h.services.store.get(newer.id))?.status, "queued");
  } finally {
    await h.close();
  }
});

Deno.test("a failure after the job row exists keeps the job and its inputs, answers 202 and never resubmits", async () => {
  const h = await startHarness({ sweep: true });
  try {
    const runner = h.services.runner;
    const store = runner.store;
    runner.leaseSeconds = 1; // so the crash policy's lease expiry comes within the test
    let failures = 1;
    // The database hiccups once, right after BFL accepted the inline submit (recording its answer).
    runner.store = new Proxy(store, {
      get(target, name) {
        if (name === "transition" && failures-- > 0) return () => Promise.reject(new Error("connection reset"));
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const form = new FormData();
    form.set("prompt", "survive a hiccup");
    form.set("input_image", new File([makePng(16, 16)], "a.png"));
    const created = await fetch(`${h.base}/jobs`, { method: "POST", body: form });
    const body = await created.json();
    assert.equal(created.status, 202, JSON.stringify(body));
    assert.equal(body.status, "submitting");
    assert.ok((await h.storedFiles()).some((path) => path.startsWith(`inputs/`)), "the input copy is kept");
    // BFL's answer was lost: the job may be billed, so it is failed, never sent a second time.
    const deadline = Date.now() + 8000;
    while ((await store.get(body.id))?.status === "submitting" && Date.now() < deadline) await sleep(50);
    const job = await store.get(body.id);
    assert.equal(job?.status, "failed");
    assert.equal(job?.error_code, "submit_interrupted");
    assert.equal(h.sim.submissions.length, 1);
  } finally {
    await h.close();
  }
});
