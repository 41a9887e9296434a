// The JobStore contract (shared/store/job-store.ts), run identically on every adapter
// (tests/support/job-store-backends.ts): SqlJobStore on embedded PGlite and on a real PostgreSQL 15
// server, and SupabaseJobStore over supabase-js through the PostgREST/Storage stand-in on that
// server (a fresh migrated database per test on one throwaway cluster). The guarantees under test
// are the migration's SQL functions and guard trigger, so on the server the concurrency cases
// really race through a connection pool (or through PostgREST).
import assert from "node:assert/strict";
import { rejectsWithSqlState } from "./support/sql-assertions.ts";
import type { JobRow, JobStatus, NewJob } from "../shared/jobs/job-row.ts";
import type { ModelId } from "../shared/jobs/models.ts";
import type { JobStore } from "../shared/store/job-store.ts";
import type { SqlClient } from "../shared/store/sql-client.ts";
import {
  type StoreBackend,
  type StoreBackendName,
  storeBackends,
} from "./support/job-store-backends.ts";
import { stopSharedPostgresCluster } from "./support/postgres-cluster.ts";

interface Ctx {
  backend: StoreBackend;
  store: JobStore;
  /** Direct SQL on this test's database, bypassing the store (as another client or an operator would). */
  sql: SqlClient;
  /** Whether the store's calls really run concurrently on the database. */
  concurrent: boolean;
  /** applyMigrations() on this test's database again. */
  migrate(): Promise<string[]>;
  /** A user that exists (store.ensureUser, or a row in auth.users where the store has none). */
  newUser(): Promise<string>;
  /** Inserts a queued job for `userId`. */
  newJob(userId: string, overrides?: Partial<NewJob>): Promise<JobRow>;
  /** Direct SQL on one job row, bypassing the store. */
  setColumns(id: string, assignments: string): Promise<void>;
  /**
   * Sets a job's status (and provider columns) with plain SQL and no lease, as setup for tests
   * that are not about transition() itself.
   */
  moveTo(
    id: string,
    status: JobStatus,
    extra?: { provider_status?: string; provider_task_id?: string },
  ): Promise<void>;
}

type PerBackend = Partial<Record<StoreBackendName, string>>;

interface ContractOptions {
  /**
   * Per backend: a reason to register the test as ignored because it exposes a known bug. Every
   * use carries a `// BUG:` comment and is described in the report.
   */
  knownBugs?: PerBackend;
  /** Per backend: why the case does not apply to that adapter (registered as ignored, named). */
  notApplicable?: PerBackend;
}

function contract(name: string, body: (ctx: Ctx) => Promise<void>, options: ContractOptions = {}) {
  for (const backend of storeBackends()) {
    const bug = options.knownBugs?.[backend.name];
    const na = options.notApplicable?.[backend.name];
    const suffix = bug ? ` (ignored, BUG: ${bug})` : na ? ` (ignored, not applicable: ${na})` : "";
    Deno.test({
      name: `JobStore contract [${backend.name}]: ${name}${suffix}`,
      ignore: bug !== undefined || na !== undefined,
      fn: () => runContract(backend, body),
    });
  }
}

async function runContract(backend: StoreBackend, body: (ctx: Ctx) => Promise<void>) {
  const opened = await backend.open();
  const { store, sql } = opened;
  const ctx: Ctx = {
    backend,
    store,
    sql,
    concurrent: opened.concurrent,
    migrate: opened.migrate,
    newUser: opened.newUser,
    newJob(userId, overrides = {}) {
      return store.insert({
        id: crypto.randomUUID(),
        user_id: userId,
        model: "flux-kontext-pro",
        params: { prompt: "a red bicycle", seed: 7 },
        inputs: [],
        ...overrides,
      });
    },
    async setColumns(id, assignments) {
      await sql.query(`update public.image_jobs set ${assignments} where id = $1`, [id]);
    },
    async moveTo(id, status, extra = {}) {
      await sql.query(
        `update public.image_jobs
            set status = $2, provider_status = coalesce($3, provider_status),
                provider_task_id = coalesce($4, provider_task_id), lease_owner = null, lease_until = null
          where id = $1`,
        [id, status, extra.provider_status ?? null, extra.provider_task_id ?? null],
      );
    },
  };
  try {
    await body(ctx);
  } finally {
    await opened.close();
  }
}

/**
 * Asserts a store call rejects with the database error of SQLSTATE `code`, as this adapter
 * surfaces it (StoreBackend.sqlStateIn): the driver's error with `.code`, or an Error whose
 * message is `Cannot <action>: ... (<code>)` (`action` pins it where given). `message` must
 * match the error's message either way.
 */
async function storeRejects(
  t: Ctx,
  promise: Promise<unknown>,
  code: string,
  options: { message?: RegExp; action?: string } = {},
) {
  if (t.backend.sqlStateIn === "code") return rejectsWithSqlState(promise, code, options.message);
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    assert.match(error.message, new RegExp(`\\(${code}\\)`));
    assert.match(error.message, /^Cannot .+: /s);
    if (options.action) {
      assert.ok(
        error.message.startsWith(`Cannot ${options.action}: `),
        `expected "Cannot ${options.action}: …", got ${error.message}`,
      );
    }
    if (options.message) assert.match(error.message, options.message);
    return true;
  });
}

const ids = (rows: { id: string }[]) => rows.map((row) => row.id);

// ---------------------------------------------------------------------------------------------
// insert / get / remove / ensureUser

contract(
  "insert fills in the defaults and get returns the same row, scoped to its owner",
  async (t) => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    const inserted = await t.newJob(alice, {
      model: "flux-kontext-max",
      params: { prompt: "snow", aspect_ratio: "16:9" },
      inputs: [{ slot: "input_image", kind: "url", url: "https://example.com/a.png" }],
      idempotency_key: "key-1",
      request_hash: "hash-1",
    });
    assert.equal(inserted.user_id, alice);
    assert.equal(inserted.model, "flux-kontext-max");
    assert.equal(inserted.status, "queued");
    assert.deepEqual(inserted.params, { prompt: "snow", aspect_ratio: "16:9" });
    assert.deepEqual(inserted.inputs, [{
      slot: "input_image",
      kind: "url",
      url: "https://example.com/a.png",
    }]);
    assert.equal(inserted.submit_attempts, 0);
    assert.equal(inserted.poll_count, 0);
    assert.equal(inserted.lease_owner, null);
    assert.equal(inserted.lease_until, null);
    assert.equal(inserted.webhook_secret, null);
    assert.equal(inserted.parent_job_id, null);
    assert.equal(inserted.idempotency_key, "key-1");
    assert.equal(inserted.request_hash, "hash-1");
    assert.ok(inserted.created_at instanceof Date && !Number.isNaN(inserted.created_at.getTime()));
    assert.ok(inserted.next_check_at instanceof Date);
    assert.ok(Math.abs(inserted.created_at.getTime() - Date.now()) < 60_000);

    assert.deepEqual(await t.store.get(inserted.id), inserted);
    assert.deepEqual(await t.store.get(inserted.id, alice), inserted);
    assert.equal(await t.store.get(inserted.id, bob), null, "another user's job is invisible");
    assert.equal(await t.store.get(crypto.randomUUID()), null);
    assert.equal(await t.store.get(crypto.randomUUID(), alice), null);

    const child = await t.newJob(alice, { parent_job_id: inserted.id });
    assert.equal(child.parent_job_id, inserted.id);

    await t.store.remove(child.id);
    assert.equal(await t.store.get(child.id), null);
    await t.store.remove(child.id); // removing twice is harmless
  },
);

contract(
  "jsonb columns hold JSON objects and arrays as SQL sees them, not JSON strings",
  async (t) => {
    const alice = await t.newUser();
    const job = await t.newJob(alice, {
      params: { prompt: "a cat", seed: 3 },
      inputs: [{ slot: "input_image", kind: "url", url: "https://example.com/cat.png" }],
    });
    const rows = await t.sql.query<
      { params_type: string; inputs_type: string; prompt: string; url: string }
    >(
      `select jsonb_typeof(params) as params_type, jsonb_typeof(inputs) as inputs_type,
              params->>'prompt' as prompt, inputs->0->>'url' as url
         from public.image_jobs where id = $1`,
      [job.id],
    );
    // What PostgREST, the RLS'd owner reads and any SQL (params->>'prompt') see.
    assert.deepEqual(rows[0], {
      params_type: "object",
      inputs_type: "array",
      prompt: "a cat",
      url: "https://example.com/cat.png",
    });
  },
);

contract("ensureUser is idempotent, also once the user has jobs", async (t) => {
  const store = t.store;
  assert.ok(store.ensureUser, "a store without Supabase Auth keeps auth.users itself");
  const id = crypto.randomUUID();
  await store.ensureUser(id);
  await store.ensureUser(id);
  await Promise.all([store.ensureUser(id), store.ensureUser(id), store.ensureUser(id)]);
  const rows = await t.sql.query<{ n: unknown }>(
    "select count(*) as n from auth.users where id = $1",
    [id],
  );
  assert.equal(Number(rows[0].n), 1);
  await t.newJob(id);
  await store.ensureUser(id); // still fine with dependent rows
}, {
  notApplicable: { supabase: "SupabaseJobStore has no ensureUser, Supabase Auth owns auth.users" },
});

contract("database errors surface as thrown errors naming the SQLSTATE", async (t) => {
  const alice = await t.newUser();
  await storeRejects(t, t.newJob(crypto.randomUUID()), "23503", {
    action: "insert the job",
    message: /foreign key/,
  });
  await storeRejects(t, t.newJob(alice, { model: "flux-pro-1.1" as ModelId }), "23514");
});

contract("an idempotency key is unique per user, not across users", async (t) => {
  const alice = await t.newUser();
  const bob = await t.newUser();
  await t.newJob(alice, { idempotency_key: "same" });
  await t.newJob(bob, { idempotency_key: "same" });
  await storeRejects(t, t.newJob(alice, { idempotency_key: "same" }), "23505");
});

// ---------------------------------------------------------------------------------------------
// list

contract(
  "list returns the owner's jobs newest first, with a keyset cursor across ties",
  async (t) => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    const created: JobRow[] = [];
    for (let i = 0; i < 7; i++) {
      created.push(
        await t.newJob(alice, { params: { prompt: `p${i}` } }),
      );
    }
    await t.newJob(bob);
    await t.newJob(bob);
    // Three jobs share one created_at, so a page boundary falls inside a tie broken by id.
    const tie = "2030-01-01T00:00:00.123Z";
    for (const job of created.slice(2, 5)) await t.setColumns(job.id, `created_at = '${tie}'`);
    await t.setColumns(created[6].id, `created_at = '2031-01-01T00:00:00.000Z'`);
    await t.setColumns(created[0].id, `created_at = '2001-01-01T00:00:00.000Z'`);

    const all = await t.store.list(alice, { limit: 100 });
    assert.equal(all.length, 7);
    assert.ok(all.every((job) => job.user_id === alice));
    const expected = [...all].sort((a, b) =>
      b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
    );
    assert.deepEqual(ids(all), ids(expected), "newest first, then id descending");
    assert.equal(all[0].id, created[6].id);
    assert.equal(all[6].id, created[0].id);

    const paged: JobRow[] = [];
    const pageSizes: number[] = [];
    let before: { createdAt: Date; id: string } | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const page = await t.store.list(alice, { limit: 2, before });
      pageSizes.push(page.length);
      if (page.length === 0) break;
      paged.push(...page);
      const last = page[page.length - 1];
      before = { createdAt: last.created_at, id: last.id };
    }
    assert.deepEqual(pageSizes, [2, 2, 2, 1, 0]);
    assert.deepEqual(
      ids(paged),
      ids(all),
      "pages concatenate to the full list: no gaps, no repeats",
    );

    assert.deepEqual(await t.store.list(crypto.randomUUID(), { limit: 10 }), []);
    assert.equal((await t.store.list(bob, { limit: 10 })).length, 2);
    assert.equal((await t.store.list(alice, { limit: 1 })).length, 1);
  },
);

// ---------------------------------------------------------------------------------------------
// claim

// ---------------------------------------------------------------------------------------------
// create: the insert with the inline submit's claim (image_jobs_create)

const newJobFields = (userId: string, model: ModelId = "flux-kontext-pro"): NewJob => ({
  id: crypto.randomUUID(),
  user_id: userId,
  model,
  params: { prompt: "a red bicycle" },
  inputs: [{ slot: "input_image", kind: "url", url: "https://example.com/a.png" }],
  idempotency_key: `key-${crypto.randomUUID()}`,
  request_hash: "hash-1",
});
const claimFor = (owner: string, caps: { account?: number; model?: number } = {}) => ({
  owner,
  leaseSeconds: 30,
  accountMaxActive: caps.account ?? 24,
  modelMaxActive: caps.model ?? 6,
  webhookSecret: `secret-of-${owner}`,
});

contract("create without a claim inserts a queued job, like insert", async (t) => {
  const alice = await t.newUser();
  const fields = newJobFields(alice);
  const job = await t.store.create(fields);
  assert.equal(job.status, "queued");
  assert.equal(job.lease_owner, null);
  assert.equal(job.submit_attempts, 0);
  assert.deepEqual(job.inputs, fields.inputs);
  assert.equal(job.idempotency_key, fields.idempotency_key);
  assert.deepEqual(await t.store.get(job.id), job);
});

contract("create with a claim takes a free slot: submitting, leased, its webhook secret stored", async (t) => {
  const alice = await t.newUser();
  const job = await t.store.create(newJobFields(alice), claimFor("creator-1"));
  assert.equal(job.status, "submitting");
  assert.equal(job.lease_owner, "creator-1");
  assert.ok(job.lease_until && job.lease_until.getTime() > Date.now() + 20_000);
  assert.equal(job.submit_attempts, 1);
  assert.equal(job.webhook_secret, "secret-of-creator-1");
  // The claim is the transition's lease: the creator can record BFL's answer.
  const running = await t.store.transition(job.id, "creator-1", ["submitting"], { status: "running" });
  assert.equal(running?.status, "running");
});

contract("create with a claim stays queued behind a waiting job, or when the slots are taken", async (t) => {
  const alice = await t.newUser();
  const bob = await t.newUser();
  // Fairness: an older queued job nobody holds goes first (the sweeper's order).
  const waiting = await t.newJob(alice);
  const behind = await t.store.create(newJobFields(bob), claimFor("creator-1"));
  assert.equal(behind.status, "queued");
  assert.equal(behind.lease_owner, null);
  assert.equal(behind.webhook_secret, null);

  // A held (leased) queued job is about to be submitted, so it is not waiting — but it holds a slot.
  await t.moveTo(waiting.id, "running");
  await t.moveTo(behind.id, "running");
  const full = await t.store.create(newJobFields(bob, "flux-kontext-max"), claimFor("creator-2", { account: 2 }));
  assert.equal(full.status, "queued", "the account's slots are all taken");
  await t.moveTo(full.id, "failed");
  const maxFull = await t.store.create(newJobFields(bob, "flux-kontext-pro"), claimFor("creator-3", { model: 2 }));
  assert.equal(maxFull.status, "queued", "the model's slots are all taken");
  await t.moveTo(maxFull.id, "failed");
  const other = await t.store.create(newJobFields(bob, "flux-kontext-max"), claimFor("creator-4", { model: 2 }));
  assert.equal(other.status, "submitting", "another model still has slots");
});

contract("create: of 12 concurrent creates with 5 free slots exactly 5 are claimed", async (t) => {
  const alice = await t.newUser();
  const jobs = await Promise.all(
    Array.from({ length: 12 }, (_, i) => t.store.create(newJobFields(alice), claimFor(`creator-${i}`, { account: 5 }))),
  );
  const claimed = jobs.filter((job) => job.status === "submitting");
  assert.equal(claimed.length, 5, `claimed ${claimed.length}`);
  assert.equal(jobs.filter((job) => job.status === "queued" && job.lease_owner === null).length, 7);
});

contract("claim: of 20 concurrent claims on one job exactly one wins", async (t) => {
  const alice = await t.newUser();
  const job = await t.newJob(alice);
  const owners = Array.from({ length: 20 }, (_, i) => `reader-${i}`);
  const results = await Promise.all(owners.map((owner) => t.store.claim(job.id, owner, 30, false)));
  const winners = results.filter((row) => row !== null);
  assert.equal(winners.length, 1, `exactly one winner, got ${winners.length}`);
  const winner = winners[0]!;
  assert.ok(owners.includes(winner.lease_owner!));
  assert.ok(winner.lease_until && winner.lease_until.getTime() > Date.now() + 20_000);
  const stored = await t.store.get(job.id);
  assert.equal(stored?.lease_owner, winner.lease_owner);
  assert.equal(stored?.status, "queued", "claiming does not change the status");
});

contract(
  "claim: a held lease blocks others until it expires; finished jobs are never claimed",
  async (t) => {
    const alice = await t.newUser();
    const job = await t.newJob(alice);
    assert.ok(await t.store.claim(job.id, "a", 60, false));
    assert.equal(await t.store.claim(job.id, "b", 60, false), null);
    assert.equal(
      await t.store.claim(job.id, "a", 60, false),
      null,
      "not even the holder re-claims a live lease",
    );

    await t.setColumns(job.id, "lease_until = now() - interval '1 second'");
    const reclaimed = await t.store.claim(job.id, "b", 60, false);
    assert.equal(reclaimed?.lease_owner, "b", "an expired lease can be taken over");

    const done = await t.newJob(alice);
    await t.moveTo(done.id, "succeeded");
    assert.equal(await t.store.claim(done.id, "c", 60, false), null);
    assert.equal(await t.store.claim(done.id, "c", 60, true), null);
    assert.equal(await t.store.claim(crypto.randomUUID(), "c", 60, false), null);
  },
);

contract("claim with onlyIfDue respects next_check_at", async (t) => {
  const alice = await t.newUser();
  const job = await t.newJob(alice);
  await t.setColumns(job.id, "next_check_at = now() + interval '1 hour'");
  assert.equal(await t.store.claim(job.id, "a", 60, true), null, "not due yet");
  const forced = await t.store.claim(job.id, "a", 60, false);
  assert.equal(forced?.lease_owner, "a", "onlyIfDue=false ignores next_check_at");

  const due = await t.newJob(alice);
  await t.setColumns(due.id, "next_check_at = now() - interval '1 second'");
  assert.equal((await t.store.claim(due.id, "b", 60, true))?.lease_owner, "b");
});

// ---------------------------------------------------------------------------------------------
// claimDue

contract(
  "claimDue takes due, unfinished, unleased jobs only: in-flight first, then queued oldest first, up to the limit",
  async (t) => {
    const alice = await t.newUser();
    const make = async (minutesAgo: number) => {
      const job = await t.newJob(alice);
      await t.setColumns(job.id, `next_check_at = now() - interval '${minutesAgo} minutes'`);
      return job;
    };
    const oldest = await make(50);
    const older = await make(40);
    const old = await make(30);
    const submitting = await make(20);
    await t.moveTo(submitting.id, "submitting");
    await t.setColumns(submitting.id, "next_check_at = now() - interval '20 minutes'");
    const running = await make(10);
    await t.moveTo(running.id, "running");
    await t.setColumns(running.id, "next_check_at = now() - interval '10 minutes'");

    const future = await make(-60);
    const leased = await make(45);
    assert.ok(await t.store.claim(leased.id, "someone", 300, false));
    const finished: JobRow[] = [];
    for (const status of ["succeeded", "failed", "moderated"] as const) {
      const job = await make(60);
      await t.moveTo(job.id, status);
      await t.setColumns(job.id, "next_check_at = now() - interval '60 minutes'");
      finished.push(job);
    }

    // In-flight jobs come first (a poll needs no new provider slot); the returned rows' order is
    // not significant, which rows were chosen under the limit is.
    const first = await t.store.claimDue("sweeper", 2, 60);
    assert.deepEqual(new Set(ids(first)), new Set([submitting.id, running.id]), "in-flight jobs first");
    assert.ok(
      first.every((row) =>
        row.lease_owner === "sweeper" && row.lease_until!.getTime() > Date.now()
      ),
    );

    const second = await t.store.claimDue("sweeper-2", 2, 60);
    assert.deepEqual(new Set(ids(second)), new Set([oldest.id, older.id]), "then the user's oldest queued jobs");
    const rest = await t.store.claimDue("sweeper-2", 100, 60);
    assert.deepEqual(ids(rest), [old.id]);
    assert.ok(rest.every((row) => row.lease_owner === "sweeper-2"));

    assert.deepEqual(
      await t.store.claimDue("sweeper-3", 100, 60),
      [],
      "nothing left that is due and free",
    );
    const never = new Set([future.id, leased.id, ...ids(finished)]);
    for (const row of [...first, ...second, ...rest]) assert.ok(!never.has(row.id));
    assert.equal(
      (await t.store.get(future.id))?.lease_owner,
      null,
      "a job not yet due is left alone",
    );
    assert.equal(
      (await t.store.get(leased.id))?.lease_owner,
      "someone",
      "a held lease is left alone",
    );
    for (const job of finished) assert.equal((await t.store.get(job.id))?.lease_owner, null);

    assert.deepEqual(await t.store.claimDue("sweeper-4", 0, 60), [], "limit 0 claims nothing");
  },
);

contract(
  "claimDue: 5 concurrent workers over 100 due jobs never get the same job twice",
  async (t) => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    await t.sql.query(
      // In-flight jobs: their claims are not capped by free provider slots (see the next case).
      `insert into public.image_jobs (user_id, model, params, next_check_at, status, provider_status)
     select case when i % 2 = 0 then $1::uuid else $2::uuid end, 'flux-kontext-pro', '{"prompt":"x"}'::jsonb,
            now() - make_interval(secs => i), 'running', 'Pending'
       from generate_series(1, 100) as i`,
      [alice, bob],
    );
    const claimedBy = new Map<string, string>();
    const duplicates: string[] = [];
    const worker = async (name: string) => {
      for (let round = 0; round < 100; round++) {
        const rows = await t.store.claimDue(name, 7, 60);
        if (rows.length === 0) return;
        for (const row of rows) {
          assert.equal(row.lease_owner, name);
          if (claimedBy.has(row.id)) duplicates.push(row.id);
          claimedBy.set(row.id, name);
        }
      }
    };
    await Promise.all(["w1", "w2", "w3", "w4", "w5"].map(worker));
    assert.deepEqual(duplicates, [], "no job was handed to two workers");
    // With SKIP LOCKED a worker may stop while rows are still locked by another; whatever is left
    // must still be claimable, exactly once.
    const leftover = await t.store.claimDue("final", 1000, 60);
    for (const row of leftover) {
      assert.ok(!claimedBy.has(row.id), "a job claimed by a worker is handed out again");
      claimedBy.set(row.id, "final");
    }
    assert.equal(claimedBy.size, 100, "every due job was claimed");
    const stored = await t.sql.query<{ id: string; lease_owner: string }>(
      "select id, lease_owner from public.image_jobs",
    );
    for (const row of stored) {
      assert.equal(
        row.lease_owner,
        claimedBy.get(row.id),
        "the row's lease names its claimer",
      );
    }
    if (t.concurrent) {
      const workers = new Set([...claimedBy.values()].filter((owner) => owner !== "final"));
      assert.ok(
        workers.size >= 2,
        `the work was spread over several workers (${[...workers].join(", ")})`,
      );
    }
  },
);

contract(
  "claimDue hands out at most the 24 free provider slots of queued jobs, even to concurrent workers",
  async (t) => {
    const alice = await t.newUser();
    await t.sql.query(
      `insert into public.image_jobs (user_id, model, params, next_check_at)
     select $1::uuid, 'flux-kontext-pro', '{"prompt":"x"}'::jsonb, now() - make_interval(secs => i)
       from generate_series(1, 60) as i`,
      [alice],
    );
    // Two jobs already hold slots at BFL.
    await t.sql.query(
      `insert into public.image_jobs (user_id, model, params, status, provider_status, next_check_at)
     select $1::uuid, 'flux-kontext-pro', '{"prompt":"x"}'::jsonb, 'running', 'Pending', now() + interval '1 hour'
       from generate_series(1, 2)`,
      [alice],
    );
    const batches = await Promise.all(["w1", "w2", "w3", "w4", "w5"].map((name) => t.store.claimDue(name, 10, 60)));
    const claimed = batches.flat();
    assert.equal(new Set(ids(claimed)).size, claimed.length, "no job was handed out twice");
    assert.equal(claimed.length, 22, "24 slots minus the 2 in use");
    assert.deepEqual(await t.store.claimDue("late", 10, 60), [], "no slot left for queued jobs");
    const counts = await t.store.activeCounts();
    assert.equal(counts["flux-kontext-pro"], 24, "claimed queued jobs hold their slots");
  },
);

// ---------------------------------------------------------------------------------------------
// transition

contract(
  "transition applies only for the lease owner and a matching from-status",
  async (t) => {
    const alice = await t.newUser();
    const job = await t.newJob(alice);
    assert.equal(
      await t.store.transition(job.id, "w", ["queued"], { status: "submitting" }),
      null,
      "no lease held: nothing happens",
    );
    assert.ok(await t.store.claim(job.id, "w", 60, false));
    assert.equal(
      await t.store.transition(job.id, "intruder", ["queued"], { status: "submitting" }),
      null,
    );
    assert.equal(
      await t.store.transition(job.id, "w", ["running", "submitting"], { status: "succeeded" }),
      null,
    );
    const unchanged = await t.store.get(job.id);
    assert.equal(unchanged?.status, "queued");
    assert.equal(unchanged?.lease_owner, "w", "failed transitions leave the lease alone");

    const moved = await t.store.transition(job.id, "w", ["queued"], {
      status: "submitting",
      submit_attempts: 1,
    });
    assert.equal(moved?.status, "submitting");
    assert.equal(moved?.submit_attempts, 1);
    assert.equal(moved?.lease_owner, null, "the lease is released");
    assert.equal(moved?.lease_until, null);
    assert.ok(moved!.updated_at.getTime() >= job.updated_at.getTime());

    assert.equal(
      await t.store.transition(job.id, "w", ["submitting"], { status: "running" }),
      null,
      "a released lease no longer authorises anything",
    );
    assert.equal((await t.store.get(job.id))?.status, "submitting");
    assert.equal(
      await t.store.transition(crypto.randomUUID(), "w", ["queued"], { status: "running" }),
      null,
    );
  },
);

contract(
  "transition keeps the lease when the patch keeps it, keeps absent keys, clears explicit nulls",
  async (t) => {
    const alice = await t.newUser();
    const job = await t.newJob(alice);
    assert.ok(await t.store.claim(job.id, "w", 60, false));
    const leaseUntil = new Date(Date.now() + 120_000);
    const submitted = new Date(Date.now() - 5_000);
    const running = await t.store.transition(job.id, "w", ["queued"], {
      status: "running",
      provider_task_id: "task-1",
      polling_url: "https://api.us1.bfl.ai/v1/get_result?id=task-1",
      webhook_secret: "s3cret",
      cost: 4.5,
      input_mp: 1.05,
      submitted_at: submitted,
      error_details: { hint: "nested", list: [1, 2] },
      lease_owner: "w",
      lease_until: leaseUntil,
    });
    assert.ok(running);
    assert.equal(running.status, "running");
    assert.equal(running.lease_owner, "w");
    assert.equal(running.lease_until?.getTime(), leaseUntil.getTime());
    assert.equal(running.cost, 4.5);
    assert.equal(running.input_mp, 1.05);
    assert.equal(running.submitted_at?.getTime(), submitted.getTime());
    assert.deepEqual(running.error_details, { hint: "nested", list: [1, 2] });

    // Still holding the lease: a patch without status or provider keys leaves them as they were.
    const nextCheck = new Date(Date.now() + 60_000);
    const polled = await t.store.transition(job.id, "w", ["running"], {
      poll_count: 1,
      provider_status: "Pending",
      next_check_at: nextCheck,
      error_message: "transient",
      lease_owner: "w",
      lease_until: leaseUntil,
    });
    assert.ok(polled);
    assert.equal(polled.status, "running");
    assert.equal(polled.provider_task_id, "task-1");
    assert.equal(polled.polling_url, "https://api.us1.bfl.ai/v1/get_result?id=task-1");
    assert.equal(polled.webhook_secret, "s3cret");
    assert.equal(polled.cost, 4.5);
    assert.equal(polled.poll_count, 1);
    assert.equal(polled.provider_status, "Pending");
    assert.equal(polled.next_check_at.getTime(), nextCheck.getTime());
    assert.equal(polled.error_message, "transient");
    assert.equal(polled.lease_owner, "w");

    // Explicit nulls clear columns; omitting the lease releases it.
    const cleared = await t.store.transition(job.id, "w", ["running"], {
      error_message: null,
      error_details: null,
      polling_url: null,
      cost: null,
    });
    assert.ok(cleared);
    assert.equal(cleared.error_message, null);
    assert.equal(cleared.error_details, null);
    assert.equal(cleared.polling_url, null);
    assert.equal(cleared.cost, null);
    assert.equal(cleared.provider_task_id, "task-1", "absent keys keep their value");
    assert.equal(cleared.webhook_secret, "s3cret");
    assert.equal(cleared.lease_owner, null, "omitting the lease releases it");
    assert.equal(cleared.lease_until, null);
    assert.deepEqual(
      await t.store.get(job.id),
      cleared,
      "what transition returns is what is stored",
    );
    const [raw] = await t.sql.query<{ details: string | null }>(
      "select jsonb_typeof(error_details) as details from public.image_jobs where id = $1",
      [job.id],
    );
    assert.equal(raw.details, null, "a JSON null clears the column (SQL NULL, not a JSON 'null')");
  },
);

contract(
  "transition to a finished state records the result (bigint, timestamps)",
  async (t) => {
    const alice = await t.newUser();
    const job = await t.newJob(alice);
    await t.moveTo(job.id, "running", { provider_task_id: "task-9" });
    assert.ok(await t.store.claim(job.id, "w", 60, false));
    const finishedAt = new Date();
    const done = await t.store.transition(job.id, "w", ["running"], {
      status: "succeeded",
      provider_status: "Ready",
      result_path: `${alice}/${job.id}.png`,
      result_content_type: "image/png",
      result_bytes: 123456789012,
      output_mp: 1.0,
      ready_at: finishedAt,
      finished_at: finishedAt,
    });
    assert.ok(done);
    assert.equal(done.status, "succeeded");
    assert.equal(done.result_bytes, 123456789012, "bigint survives the round trip");
    assert.equal(done.output_mp, 1);
    assert.equal(done.finished_at?.getTime(), finishedAt.getTime());
    assert.equal(done.provider_task_id, "task-9");
  },
);

contract(
  "a finished job never moves backwards on a direct update: the guard trigger raises",
  async (t) => {
    const alice = await t.newUser();
    for (const finalStatus of ["succeeded", "failed", "moderated"] as const) {
      const job = await t.newJob(alice);
      await t.moveTo(job.id, "running");
      await t.moveTo(job.id, finalStatus);
      for (
        const target of ["queued", "submitting", "running", "succeeded", "failed", "moderated"]
      ) {
        if (target === finalStatus) continue;
        await rejectsWithSqlState(
          t.sql.query("update public.image_jobs set status = $2 where id = $1", [job.id, target]),
          "23514",
          /finished/,
        );
      }
      await rejectsWithSqlState(
        t.sql.query(
          "update public.image_jobs set status = 'running', lease_owner = null where id = $1",
          [job.id],
        ),
        "23514",
      );
      assert.equal((await t.store.get(job.id))?.status, finalStatus);
      // Other columns of a finished job may still change (e.g. bookkeeping), the status may not.
      await t.sql.query(
        "update public.image_jobs set status = $2, error_message = 'note' where id = $1",
        [
          job.id,
          finalStatus,
        ],
      );
      assert.equal((await t.store.get(job.id))?.error_message, "note");
    }
  },
);

contract(
  "a finished job never moves backwards via transition, even for the lease holder",
  async (t) => {
    const alice = await t.newUser();
    for (const finalStatus of ["succeeded", "failed", "moderated"] as const) {
      const job = await t.newJob(alice);
      await t.moveTo(job.id, "running");
      // Finish while keeping the lease, so only the guard trigger stands in the way.
      assert.ok(await t.store.claim(job.id, "w", 60, false));
      const leaseUntil = new Date(Date.now() + 60_000);
      const finished = await t.store.transition(job.id, "w", ["running"], {
        status: finalStatus,
        lease_owner: "w",
        lease_until: leaseUntil,
      });
      assert.equal(finished?.status, finalStatus);

      await storeRejects(
        t,
        t.store.transition(job.id, "w", [finalStatus], {
          status: "running",
          lease_owner: "w",
          lease_until: leaseUntil,
        }),
        "23514",
        { message: /finished/ },
      );
      const sideways = finalStatus === "failed" ? "succeeded" : "failed";
      await storeRejects(
        t,
        t.store.transition(job.id, "w", [finalStatus], { status: sideways }),
        "23514",
        { message: /finished/ },
      );
      const stored = await t.store.get(job.id);
      assert.equal(stored?.status, finalStatus);
      assert.equal(stored?.lease_owner, "w", "the failed transition was rolled back as a whole");

      // Without the lease, a transition is simply refused.
      await t.setColumns(job.id, "lease_owner = null, lease_until = null");
      assert.equal(
        await t.store.transition(job.id, "w", [finalStatus], { status: "running" }),
        null,
        "no lease: refused",
      );
      assert.equal((await t.store.get(job.id))?.status, finalStatus);
    }
  },
);

// ---------------------------------------------------------------------------------------------
// activeCounts

contract("activeCounts counts submitting and running jobs per model", async (t) => {
  assert.deepEqual(await t.store.activeCounts(), {});
  const alice = await t.newUser();
  const job = async (
    model: ModelId,
    status: JobStatus,
    extra: { provider_status?: string } = {},
  ) => {
    const row = await t.newJob(alice, { model });
    if (status !== "queued") await t.moveTo(row.id, status, extra);
  };
  await job("flux-kontext-pro", "queued");
  await job("flux-kontext-pro", "submitting");
  await job("flux-kontext-pro", "running");
  await job("flux-kontext-pro", "running", { provider_status: "Pending" });
  await job("flux-kontext-pro", "succeeded");
  await job("flux-kontext-max", "running");
  await job("flux-kontext-max", "failed");
  await job("flux-kontext-max", "moderated");
  // A running job whose result is Ready (being downloaded) no longer holds a provider slot.
  await job("flux-kontext-max", "running", { provider_status: "Ready" });
  await job("flux-bagel-alpha", "queued");
  assert.deepEqual(await t.store.activeCounts(), { "flux-kontext-pro": 3, "flux-kontext-max": 1 });
});

// ---------------------------------------------------------------------------------------------
// migrations

const SCHEMA_SNAPSHOT = `
  select 'column' as kind, table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' '
         || is_nullable || ' ' || coalesce(column_default, '') as item
    from information_schema.columns where table_schema in ('public', 'auth', 'storage')
  union all
  select 'index', schemaname || ' ' || indexdef from pg_indexes where schemaname in ('public', 'auth', 'storage')
  union all
  select 'function', p.oid::regprocedure::text || ' ' || md5(p.prosrc) || ' ' || coalesce(p.proacl::text, '')
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('public', 'auth', 'storage')
  union all
  select 'trigger', tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text
    from pg_trigger where not tgisinternal
  union all
  select 'policy', schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' '
         || array_to_string(roles, ',') || ' ' || coalesce(qual, '')
    from pg_policies
  union all
  select 'table', c.oid::regclass::text || ' rls=' || c.relrowsecurity || ' ' || coalesce(c.relacl::text, '')
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'auth', 'storage') and c.relkind = 'r'
  union all
  select 'column-acl', attrelid::regclass::text || '.' || attname || ' ' || attacl::text
    from pg_attribute where attrelid = 'public.image_jobs'::regclass and attacl is not null
  union all
  select 'role', rolname || ' ' || rolbypassrls from pg_roles where rolname in ('anon', 'authenticated', 'service_role')
  order by 1, 2`;

async function schemaSnapshot(sql: SqlClient): Promise<string[]> {
  return (await sql.query<{ kind: string; item: string }>(SCHEMA_SNAPSHOT)).map((row) =>
    `${row.kind}: ${row.item}`
  );
}

contract("applying the migrations again is a no-op", async (t) => {
  const before = await schemaSnapshot(t.sql);
  assert.ok(before.some((line) => line.includes("image_jobs_claim_due")));
  assert.ok(before.some((line) => line.startsWith("trigger: image_jobs image_jobs_guard")));
  assert.ok(before.some((line) => line.startsWith("policy: public.image_jobs")));
  const alice = await t.newUser();
  const job = await t.newJob(alice);

  assert.deepEqual(await t.migrate(), [], "nothing left to apply");
  assert.deepEqual(await schemaSnapshot(t.sql), before);

  // The files themselves are idempotent too (the migration says so): re-run them from scratch.
  await t.sql.query("delete from supabase_migrations.schema_migrations");
  const reapplied = await t.migrate();
  assert.ok(reapplied.length >= 1);
  assert.deepEqual(
    await schemaSnapshot(t.sql),
    before,
    "re-running every migration changes nothing",
  );
  assert.deepEqual(await t.store.get(job.id), job, "data survives");
  assert.deepEqual(await t.migrate(), []);
});

Deno.test("stop the shared PostgreSQL cluster", async () => {
  await stopSharedPostgresCluster();
});
