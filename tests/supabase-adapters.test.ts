// The supabase-js adapters (shared/supabase/) against a stand-in for Supabase's PostgREST and
// Storage HTTP APIs (tests/support/supabase-standin.ts) backed by a real PostgreSQL 15 server with
// the migrations applied: the JobStore contract over supabase-js, the ImageStorage adapter, and
// the whole `images` service built from SUPABASE_URL/SUPABASE_SECRET_KEY end to end with the BFL
// simulator. supabase-js runs unmodified; only its server is a stand-in.
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import type postgres from "postgres";
import type { SupabaseClient } from "@supabase/supabase-js";
import { imagesAppFor } from "../shared/api/create-images-app.ts";
import { configFromEnv } from "../shared/config/load-config.ts";
import { decodeBase64 } from "../shared/images/base64.ts";
import { sniffImage } from "../shared/images/sniff-image.ts";
import type { JobRow, JobStatus, NewJob } from "../shared/jobs/job-row.ts";
import type { ModelId } from "../shared/jobs/models.ts";
import { createMemoryLogger } from "../shared/log/logger.ts";
import type { JobStore } from "../shared/store/job-store.ts";
import { createAdminClient } from "../shared/supabase/create-admin-client.ts";
import { SupabaseImageStorage } from "../shared/supabase/supabase-image-storage.ts";
import { SupabaseJobStore } from "../shared/supabase/supabase-job-store.ts";
import { buildServices } from "../shared/wiring/build-services.ts";
import { startBflSimulator } from "./support/bfl-simulator.ts";
import {
  connect,
  createTestDatabase,
  migratePostgres,
  sharedPostgresCluster,
  stopSharedPostgresCluster,
} from "./support/postgres-cluster.ts";
import { startSupabaseStandin, type SupabaseStandin } from "./support/supabase-standin.ts";
import { makeJpeg, makePng } from "./support/test-images.ts";

const SERVICE_KEY = `sb_secret_standin_${crypto.randomUUID().replaceAll("-", "")}`;

// ---------------------------------------------------------------------------------------------
// Fixtures

interface SupabaseEnv {
  /** postgres.js on the test database as its owner (bypasses PostgREST, RLS and grants). */
  db: postgres.Sql;
  databaseUrl: string;
  standin: SupabaseStandin;
  /** The service's own admin client, pointed at the stand-in. */
  client: SupabaseClient;
}

/** A fresh migrated database on the shared cluster, a stand-in on it, and an admin client. */
async function withSupabase(body: (env: SupabaseEnv) => Promise<void>): Promise<void> {
  const cluster = await sharedPostgresCluster();
  const database = await createTestDatabase(cluster);
  let db: postgres.Sql | undefined;
  let standin: SupabaseStandin | undefined;
  try {
    await migratePostgres(database.url);
    db = connect(database.url, { max: 4 });
    standin = await startSupabaseStandin({ databaseUrl: database.url, serviceKey: SERVICE_KEY });
    await body({
      db,
      databaseUrl: database.url,
      standin,
      client: createAdminClient(standin.url, SERVICE_KEY),
    });
  } finally {
    await standin?.close();
    await db?.end({ timeout: 5 });
    await database.drop();
  }
}

async function newUser(db: postgres.Sql, id: string = crypto.randomUUID()): Promise<string> {
  await db.unsafe("insert into auth.users (id, email) values ($1, $2)", [id, `${id}@example.test`]);
  return id;
}

// ---------------------------------------------------------------------------------------------
// The JobStore contract, written against a store factory (here: supabase-js → stand-in → PostgreSQL)

interface StoreFixture {
  store: JobStore;
  /** Whether the store's calls really run concurrently on the database. */
  concurrent: boolean;
  /** Direct SQL as the database owner, bypassing the store. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** A user that exists in auth.users (SupabaseJobStore has no ensureUser). */
  newUser(): Promise<string>;
}

interface StoreFactory {
  name: string;
  open(): Promise<{ fixture: StoreFixture; close(): Promise<void> }>;
}

/** SupabaseJobStore over createAdminClient(standin) on a fresh migrated PostgreSQL database. */
const supabaseStoreFactory: StoreFactory = {
  name: "supabase-js via the stand-in on PostgreSQL",
  async open() {
    const cluster = await sharedPostgresCluster();
    const database = await createTestDatabase(cluster);
    try {
      await migratePostgres(database.url);
    } catch (error) {
      await database.drop();
      throw error;
    }
    const db = connect(database.url, { max: 4 });
    const standin = await startSupabaseStandin({
      databaseUrl: database.url,
      serviceKey: SERVICE_KEY,
    });
    const fixture: StoreFixture = {
      store: new SupabaseJobStore(createAdminClient(standin.url, SERVICE_KEY)),
      concurrent: true,
      query: async <T>(text: string, params: unknown[] = []) =>
        (await db.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[],
      newUser: () => newUser(db),
    };
    return {
      fixture,
      async close() {
        await fixture.store.close();
        await standin.close();
        await db.end({ timeout: 5 });
        await database.drop();
      },
    };
  },
};

const STORE_FACTORIES: StoreFactory[] = [supabaseStoreFactory];

function contract(
  name: string,
  body: (t: StoreFixture) => Promise<void>,
  knownBugs: Record<string, string> = {},
) {
  for (const factory of STORE_FACTORIES) {
    const bug = knownBugs[factory.name];
    Deno.test({
      name: `JobStore contract [${factory.name}]: ${name}${bug ? ` (ignored, BUG: ${bug})` : ""}`,
      ignore: bug !== undefined,
      async fn() {
        const opened = await factory.open();
        try {
          await body(opened.fixture);
        } finally {
          await opened.close();
        }
      },
    });
  }
}

function newJob(t: StoreFixture, userId: string, overrides: Partial<NewJob> = {}): Promise<JobRow> {
  return t.store.insert({
    id: crypto.randomUUID(),
    user_id: userId,
    model: "flux-kontext-pro",
    params: { prompt: "a red bicycle", seed: 7 },
    inputs: [],
    ...overrides,
  });
}

async function setColumns(t: StoreFixture, id: string, assignments: string): Promise<void> {
  await t.query(`update public.image_jobs set ${assignments} where id = $1`, [id]);
}

/** Sets a job's status (and provider columns) with plain SQL and no lease. */
async function moveTo(
  t: StoreFixture,
  id: string,
  status: JobStatus,
  extra: { provider_status?: string; provider_task_id?: string } = {},
): Promise<void> {
  await t.query(
    `update public.image_jobs
        set status = $2, provider_status = coalesce($3, provider_status),
            provider_task_id = coalesce($4, provider_task_id), lease_owner = null, lease_until = null
      where id = $1`,
    [id, status, extra.provider_status ?? null, extra.provider_task_id ?? null],
  );
}

const ids = (rows: { id: string }[]) => rows.map((row) => row.id);

/** Asserts `promise` rejects with an Error whose message matches every pattern. */
async function rejectsMatching(promise: Promise<unknown>, ...patterns: RegExp[]) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

contract(
  "insert fills in the defaults and get returns the same row, scoped to its owner",
  async (t) => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    const inserted = await newJob(t, alice, {
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

    // What PostgREST, owners' RLS'd reads and any SQL see: JSON objects and arrays, not strings.
    const [types] = await t.query<{ params: string; inputs: string; prompt: string }>(
      `select jsonb_typeof(params) as params, jsonb_typeof(inputs) as inputs, params->>'prompt' as prompt
       from public.image_jobs where id = $1`,
      [inserted.id],
    );
    assert.deepEqual({ ...types }, { params: "object", inputs: "array", prompt: "snow" });

    const child = await newJob(t, alice, { parent_job_id: inserted.id });
    assert.equal(child.parent_job_id, inserted.id);
    await t.store.remove(child.id);
    assert.equal(await t.store.get(child.id), null);
    await t.store.remove(child.id); // removing twice is harmless
  },
);

contract("database errors surface as thrown Errors naming the SQLSTATE", async (t) => {
  const alice = await t.newUser();
  const bob = await t.newUser();
  await rejectsMatching(newJob(t, crypto.randomUUID()), /Cannot insert the job/, /\(23503\)/);
  await newJob(t, alice, { idempotency_key: "same" });
  await newJob(t, bob, { idempotency_key: "same" });
  await rejectsMatching(newJob(t, alice, { idempotency_key: "same" }), /\(23505\)/);
  await rejectsMatching(
    newJob(t, alice, { model: "flux-pro-1.1" as ModelId }),
    /\(23514\)/,
  );
});

contract(
  "list returns the owner's jobs newest first, with a keyset cursor across ties",
  async (t) => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    const created: JobRow[] = [];
    for (let i = 0; i < 7; i++) {
      created.push(
        await newJob(t, alice, { params: { prompt: `p${i}` } }),
      );
    }
    await newJob(t, bob);
    await newJob(t, bob);
    // Three jobs share one created_at, so a page boundary falls inside a tie broken by id.
    const tie = "2030-01-01T00:00:00.123Z";
    for (const job of created.slice(2, 5)) await setColumns(t, job.id, `created_at = '${tie}'`);
    await setColumns(t, created[6].id, `created_at = '2031-01-01T00:00:00.000Z'`);
    await setColumns(t, created[0].id, `created_at = '2001-01-01T00:00:00.000Z'`);

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

contract("claim: of 20 concurrent claims on one job exactly one wins", async (t) => {
  const alice = await t.newUser();
  const job = await newJob(t, alice);
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
  "claim: a held lease blocks others until it expires; finished jobs are never claimed; onlyIfDue",
  async (t) => {
    const alice = await t.newUser();
    const job = await newJob(t, alice);
    assert.ok(await t.store.claim(job.id, "a", 60, false));
    assert.equal(await t.store.claim(job.id, "b", 60, false), null);
    assert.equal(
      await t.store.claim(job.id, "a", 60, false),
      null,
      "not even the holder re-claims a live lease",
    );
    await setColumns(t, job.id, "lease_until = now() - interval '1 second'");
    assert.equal(
      (await t.store.claim(job.id, "b", 60, false))?.lease_owner,
      "b",
      "an expired lease can be taken over",
    );

    const done = await newJob(t, alice);
    await moveTo(t, done.id, "succeeded");
    assert.equal(await t.store.claim(done.id, "c", 60, false), null);
    assert.equal(await t.store.claim(done.id, "c", 60, true), null);
    assert.equal(await t.store.claim(crypto.randomUUID(), "c", 60, false), null);

    const later = await newJob(t, alice);
    await setColumns(t, later.id, "next_check_at = now() + interval '1 hour'");
    assert.equal(await t.store.claim(later.id, "d", 60, true), null, "not due yet");
    assert.equal(
      (await t.store.claim(later.id, "d", 60, false))?.lease_owner,
      "d",
      "onlyIfDue=false ignores next_check_at",
    );
    const due = await newJob(t, alice);
    await setColumns(t, due.id, "next_check_at = now() - interval '1 second'");
    assert.equal((await t.store.claim(due.id, "e", 60, true))?.lease_owner, "e");
  },
);

contract(
  "claimDue takes due, unfinished, unleased jobs only, oldest first, up to the limit",
  async (t) => {
    const alice = await t.newUser();
    const make = async (minutesAgo: number, status: JobStatus = "queued") => {
      const job = await newJob(t, alice);
      if (status !== "queued") await moveTo(t, job.id, status);
      await setColumns(t, job.id, `next_check_at = now() - interval '${minutesAgo} minutes'`);
      return job;
    };
    const oldest = await make(50);
    const older = await make(40);
    const old = await make(30);
    const submitting = await make(20, "submitting");
    const running = await make(10, "running");
    const future = await make(-60);
    const leased = await make(45);
    assert.ok(await t.store.claim(leased.id, "someone", 300, false));
    const finished = [
      await make(60, "succeeded"),
      await make(60, "failed"),
      await make(60, "moderated"),
    ];

    const first = await t.store.claimDue("sweeper", 2, 60);
    assert.deepEqual(
      ids(first),
      [oldest.id, older.id],
      "the two most overdue, in next_check_at order",
    );
    assert.ok(first.every((row) => row.lease_owner === "sweeper"));
    const rest = await t.store.claimDue("sweeper-2", 10, 60);
    assert.deepEqual(ids(rest), [old.id, submitting.id, running.id]);
    assert.deepEqual(
      await t.store.claimDue("sweeper-3", 10, 60),
      [],
      "nothing left that is due and free",
    );
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
  "claimDue: 5 concurrent workers over 50 due jobs never get the same job twice",
  async (t) => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    await t.query(
      `insert into public.image_jobs (user_id, model, params, next_check_at)
     select case when i % 2 = 0 then $1::uuid else $2::uuid end, 'flux-kontext-pro', '{"prompt":"x"}'::jsonb,
            now() - make_interval(secs => i)
       from generate_series(1, 50) as i`,
      [alice, bob],
    );
    const claimedBy = new Map<string, string>();
    const duplicates: string[] = [];
    const worker = async (name: string) => {
      for (let round = 0; round < 50; round++) {
        const rows = await t.store.claimDue(name, 4, 60);
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
    for (const row of await t.store.claimDue("final", 1000, 60)) {
      assert.ok(!claimedBy.has(row.id), "a job claimed by a worker is handed out again");
      claimedBy.set(row.id, "final");
    }
    assert.equal(claimedBy.size, 50, "every due job was claimed");
    const stored = await t.query<{ id: string; lease_owner: string }>(
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

contract("transition applies only for the lease owner and a matching from-status", async (t) => {
  const alice = await t.newUser();
  const job = await newJob(t, alice);
  assert.equal(
    await t.store.transition(job.id, "w", ["queued"], { status: "submitting" }),
    null,
    "no lease held",
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
});

contract(
  "transition keeps the lease when the patch keeps it, keeps absent keys, clears explicit nulls",
  async (t) => {
    const alice = await t.newUser();
    const job = await newJob(t, alice);
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
    assert.equal(polled.webhook_secret, "s3cret");
    assert.equal(polled.cost, 4.5);
    assert.equal(polled.poll_count, 1);
    assert.equal(polled.provider_status, "Pending");
    assert.equal(polled.next_check_at.getTime(), nextCheck.getTime());
    assert.equal(polled.error_message, "transient");
    assert.equal(polled.lease_owner, "w");

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
    assert.equal(cleared.lease_owner, null, "omitting the lease releases it");
    assert.equal(cleared.lease_until, null);
    assert.deepEqual(
      await t.store.get(job.id),
      cleared,
      "what transition returns is what is stored",
    );
    const [raw] = await t.query<{ details: string | null }>(
      "select jsonb_typeof(error_details) as details from public.image_jobs where id = $1",
      [job.id],
    );
    assert.equal(raw.details, null, "a JSON null clears the column (SQL NULL, not a JSON 'null')");
  },
);

contract("transition to a finished state records the result (bigint, timestamps)", async (t) => {
  const alice = await t.newUser();
  const job = await newJob(t, alice);
  await moveTo(t, job.id, "running", { provider_task_id: "task-9" });
  assert.ok(await t.store.claim(job.id, "w", 60, false));
  const finishedAt = new Date();
  const done = await t.store.transition(job.id, "w", ["running"], {
    status: "succeeded",
    provider_status: "Ready",
    result_path: `results/${alice}/${job.id}.png`,
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
});

contract(
  "a finished job never moves backwards: transition throws an Error, the row is unchanged",
  async (t) => {
    const alice = await t.newUser();
    for (const finalStatus of ["succeeded", "failed", "moderated"] as const) {
      const job = await newJob(t, alice);
      await moveTo(t, job.id, "running");
      // Finish while keeping the lease, so only the guard trigger stands in the way.
      assert.ok(await t.store.claim(job.id, "w", 60, false));
      const leaseUntil = new Date(Date.now() + 60_000);
      const finished = await t.store.transition(job.id, "w", ["running"], {
        status: finalStatus,
        lease_owner: "w",
        lease_until: leaseUntil,
      });
      assert.equal(finished?.status, finalStatus);

      await rejectsMatching(
        t.store.transition(job.id, "w", [finalStatus], {
          status: "running",
          lease_owner: "w",
          lease_until: leaseUntil,
        }),
        /finished/,
        /\(23514\)/,
      );
      const sideways = finalStatus === "failed" ? "succeeded" : "failed";
      await rejectsMatching(
        t.store.transition(job.id, "w", [finalStatus], { status: sideways }),
        /finished/,
        /\(23514\)/,
      );
      const stored = await t.store.get(job.id);
      assert.equal(stored?.status, finalStatus);
      assert.equal(stored?.lease_owner, "w", "the failed transition was rolled back as a whole");

      await setColumns(t, job.id, "lease_owner = null, lease_until = null");
      assert.equal(
        await t.store.transition(job.id, "w", [finalStatus], { status: "running" }),
        null,
        "no lease: refused",
      );
      assert.equal((await t.store.get(job.id))?.status, finalStatus);
    }
  },
);

contract("activeCounts counts submitting and running jobs per model", async (t) => {
  assert.deepEqual(await t.store.activeCounts(), {});
  const alice = await t.newUser();
  const job = async (
    model: ModelId,
    status: JobStatus,
    extra: { provider_status?: string } = {},
  ) => {
    const row = await newJob(t, alice, { model });
    if (status !== "queued") await moveTo(t, row.id, status, extra);
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
// The stand-in itself: what it refuses, and PostgREST's error behaviour on the wire

Deno.test("stand-in: only the service key is accepted; a user JWT is not honoured", async () => {
  await withSupabase(async ({ standin }) => {
    const rest = `${standin.url}/rest/v1/image_jobs?select=*`;
    const call = (headers: Record<string, string>) => fetch(rest, { headers });
    const refused = async (response: Response) => {
      assert.equal(response.status, 401);
      assert.deepEqual(await response.json(), { message: "Invalid API key" });
    };
    await refused(await call({}));
    await refused(await call({ apikey: "sb_publishable_nope" }));
    await refused(
      await call({
        apikey: SERVICE_KEY,
        authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
      }),
    );
    await refused(
      await fetch(`${standin.url}/storage/v1/object/images/x.png`, {
        headers: { apikey: "wrong" },
      }),
    );
    const ok = await call({ apikey: SERVICE_KEY, authorization: `Bearer ${SERVICE_KEY}` });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), []);
  });
});

Deno.test("stand-in: PostgREST errors, grants and singular responses follow PostgREST", async () => {
  await withSupabase(async ({ db, standin, client }) => {
    const headers = {
      apikey: SERVICE_KEY,
      authorization: `Bearer ${SERVICE_KEY}`,
      "content-type": "application/json",
    };
    const post = (path: string, body: unknown, extra: Record<string, string> = {}) =>
      fetch(`${standin.url}/rest/v1/${path}`, {
        method: "POST",
        headers: { ...headers, ...extra },
        body: JSON.stringify(body),
      });

    const missingTable = await fetch(`${standin.url}/rest/v1/nope?select=*`, { headers });
    assert.equal(missingTable.status, 404);
    assert.equal((await missingTable.json()).code, "PGRST205");

    const missingFn = await post("rpc/image_jobs_claim", { p_id: crypto.randomUUID() });
    assert.equal(missingFn.status, 404, "required arguments missing: no such function");
    assert.equal((await missingFn.json()).code, "PGRST202");

    const unknownColumn = await post("image_jobs", { nope: 1 });
    assert.equal(unknownColumn.status, 400);
    assert.equal((await unknownColumn.json()).code, "PGRST204");

    const badFilter = await fetch(`${standin.url}/rest/v1/image_jobs?select=*&id=gt.1`, {
      headers,
    });
    assert.equal(badFilter.status, 400);
    assert.equal((await badFilter.json()).code, "PGRST100");

    // Requests run as service_role: what it was not granted is refused (42501 → 403).
    await db.unsafe(`
      create table public.standin_private (id int);
      create function public.standin_private_fn() returns int language sql as 'select 1';
      revoke execute on function public.standin_private_fn() from public;`);
    const table = await post("standin_private", { id: 1 });
    assert.equal(table.status, 403);
    assert.equal((await table.json()).code, "42501");
    const fn = await post("rpc/standin_private_fn", {});
    assert.equal(fn.status, 403);
    assert.equal((await fn.json()).code, "42501");
    await db.unsafe("grant execute on function public.standin_private_fn() to service_role");
    const granted = await post("rpc/standin_private_fn", {});
    assert.equal(granted.status, 200);
    assert.equal(await granted.json(), 1, "a scalar function answers its bare value");

    // Singular responses: two rows inserted with Accept: object → 406, and nothing is inserted.
    const user = await newUser(db);
    const row = () => ({
      id: crypto.randomUUID(),
      user_id: user,
      model: "flux-kontext-pro",
      params: { prompt: "x" },
    });
    const two = await post("image_jobs?select=*", [row(), row()], {
      accept: "application/vnd.pgrst.object+json",
      prefer: "return=representation",
    });
    assert.equal(two.status, 406);
    assert.equal((await two.json()).code, "PGRST116");
    assert.equal(
      Number((await db`select count(*) as n from public.image_jobs`)[0].n),
      0,
      "rolled back",
    );

    // Unique violations are 409 and carry PostgreSQL's code, message and details.
    const first = row();
    const inserted = await post("image_jobs", first);
    assert.equal(inserted.status, 201);
    assert.equal(await inserted.text(), "", "no Prefer: return=minimal, no body");
    const again = await post("image_jobs", first);
    assert.equal(again.status, 409);
    const error = await again.json();
    assert.equal(error.code, "23505");
    assert.match(error.message, /duplicate key/);
    assert.match(error.details, /already exists/);
    assert.ok("hint" in error);

    // supabase-js sees PostgREST errors as { code, message }.
    const { error: rpcError } = await client.rpc("image_jobs_transition", {
      p_id: "not-a-uuid",
      p_owner: "w",
      p_from: ["queued"],
      p_patch: {},
    });
    assert.equal(rpcError?.code, "22P02");
  });
});

// ---------------------------------------------------------------------------------------------
// SupabaseImageStorage

Deno.test("SupabaseImageStorage: put keeps the content type, upsert overwrites in place, get of a missing path is null", async () => {
  await withSupabase(async ({ db, standin, client }) => {
    const storage = new SupabaseImageStorage(client);
    const user = crypto.randomUUID();
    const path = `results/${user}/${crypto.randomUUID()}.png`;
    const first = makePng(40, 30, 1);
    await storage.put(path, first, "image/png");

    const raw = await fetch(`${standin.url}/storage/v1/object/images/${path}`, {
      headers: { apikey: SERVICE_KEY, authorization: `Bearer ${SERVICE_KEY}` },
    });
    assert.equal(raw.status, 200);
    assert.equal(
      raw.headers.get("content-type"),
      "image/png",
      "stored as image/png, not text/plain",
    );
    assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), first);
    const got = await storage.get(path);
    assert.deepEqual(got, { bytes: first, contentType: "image/png" });

    // The same path again (a retried store): no error, the latest bytes win, still one object.
    const second = makePng(20, 20, 2);
    await storage.put(path, second, "image/png");
    assert.deepEqual((await storage.get(path))?.bytes, second);
    const rows = await db<{ name: string; mimetype: string; size: number }[]>`
      select name, metadata->>'mimetype' as mimetype, (metadata->>'size')::int as size
        from storage.objects where bucket_id = 'images'`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [{
      name: path,
      mimetype: "image/png",
      size: second.byteLength,
    }]);

    assert.equal(await storage.get(`results/${user}/missing.png`), null);
    assert.equal(await storage.get(`nowhere/${crypto.randomUUID()}.jpeg`), null);

    // Without upsert (not what the adapter does) Storage refuses a second write: the stand-in too.
    const { error } = await client.storage.from("images").upload(path, second, {
      contentType: "image/png",
    });
    assert.equal((error as { statusCode?: string } | null)?.statusCode, "409");
  });
});

Deno.test("SupabaseImageStorage: remove deletes rows and bytes; the bucket's limits are enforced", async () => {
  await withSupabase(async ({ db, standin, client }) => {
    const storage = new SupabaseImageStorage(client);
    const a = `inputs/${crypto.randomUUID()}/a/input_image.png`;
    const b = `inputs/${crypto.randomUUID()}/b/input_image.jpeg`;
    await storage.put(a, makePng(8, 8), "image/png");
    await storage.put(b, makeJpeg(8, 8), "image/jpeg");
    assert.equal((await storage.get(b))?.contentType, "image/jpeg");
    await storage.remove([a, `inputs/${crypto.randomUUID()}/never-existed.png`]);
    assert.equal(await storage.get(a), null);
    assert.ok(await storage.get(b), "other objects stay");
    await storage.remove([]);
    assert.deepEqual((await db`select name from storage.objects`).map((r) => r.name), [b]);
    await assert.rejects(Deno.stat(`${standin.storageDir}/images/${a}`), Deno.errors.NotFound);
    assert.ok((await Deno.stat(`${standin.storageDir}/images/${b}`)).isFile);

    await rejectsMatching(
      storage.put("inputs/x/doc.txt", new TextEncoder().encode("hi"), "text/plain"),
      /mime type text\/plain is not supported/,
    );
    await db`update storage.buckets set file_size_limit = 100 where id = 'images'`;
    await rejectsMatching(
      storage.put("inputs/x/big.png", makePng(64, 64, 9), "image/png"),
      /exceeded the maximum allowed size/,
    );
    assert.equal(await storage.get("inputs/x/big.png"), null);

    const other = new SupabaseImageStorage(client, "no-such-bucket");
    await rejectsMatching(other.put("x.png", makePng(4, 4), "image/png"), /Bucket not found/);
  });
});

Deno.test({
  name:
    "SupabaseImageStorage: get() on a missing bucket throws instead of answering 'no such object'",
  fn: async () => {
    await withSupabase(async ({ client }) => {
      const storage = new SupabaseImageStorage(client, "no-such-bucket");
      await rejectsMatching(storage.get("inputs/x/input_image.png"), /Bucket not found/);
    });
  },
});

Deno.test("SupabaseImageStorage: signedUrl downloads without any key; a tampered token fails", async () => {
  await withSupabase(async ({ client }) => {
    const storage = new SupabaseImageStorage(client);
    const path = `results/${crypto.randomUUID()}/${crypto.randomUUID()}.png`;
    const png = makePng(16, 16, 5);
    await storage.put(path, png, "image/png");
    const url = await storage.signedUrl(path, 3600);
    assert.match(url, /\/storage\/v1\/object\/sign\/images\/results\/.+\.png\?token=/);

    const download = await fetch(url); // no apikey, no Authorization
    assert.equal(download.status, 200);
    assert.equal(download.headers.get("content-type"), "image/png");
    assert.deepEqual(new Uint8Array(await download.arrayBuffer()), png);

    const token = new URL(url).searchParams.get("token")!;
    const [header, payload, signature] = token.split(".");
    const flipped = signature.slice(0, -2) + (signature.at(-2) === "A" ? "B" : "A") +
      signature.at(-1);
    const tampered = new URL(url);
    tampered.searchParams.set("token", `${header}.${payload}.${flipped}`);
    const refused = await fetch(tampered);
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error, "InvalidJWT");

    // A valid token for one object does not open another.
    const otherPath = `results/${crypto.randomUUID()}/other.png`;
    await storage.put(otherPath, makePng(4, 4), "image/png");
    const moved = new URL(url.replace(path, otherPath));
    const mismatch = await fetch(moved);
    assert.equal(mismatch.status, 400);
    await mismatch.body?.cancel();

    await rejectsMatching(
      storage.signedUrl(`results/${crypto.randomUUID()}.png`, 60),
      /Object not found/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: the service built from SUPABASE_URL, through supabase-js, to PostgreSQL and files

async function withService(
  body: (ctx: {
    env: SupabaseEnv;
    app: ReturnType<typeof imagesAppFor>;
    sim: Awaited<ReturnType<typeof startBflSimulator>>;
    localUser: string;
    jwtSecret: string;
  }) => Promise<void>,
) {
  await withSupabase(async (env) => {
    const sim = await startBflSimulator({ readyAfterMs: 200 });
    try {
      const localUser = await newUser(env.db);
      const jwtSecret = `jwt-secret-${crypto.randomUUID()}`;
      const services = await buildServices(
        configFromEnv({
          SUPABASE_URL: env.standin.url,
          SUPABASE_SECRET_KEY: SERVICE_KEY,
          SUPABASE_JWT_SECRET: jwtSecret,
          BFL_API_KEY: sim.key,
          BFL_API_URL: sim.apiUrl,
          BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
          ALLOW_ANONYMOUS: "true",
          LOCAL_USER_ID: localUser,
          WEBHOOKS: "false",
          POLL_INTERVAL_MS: "100",
        }),
        { log: createMemoryLogger() },
      );
      try {
        assert.equal(services.config.store, "supabase");
        await body({ env, app: imagesAppFor(services), sim, localUser, jwtSecret });
      } finally {
        await services.close();
      }
    } finally {
      await sim.close();
    }
  });
}

async function followJob(
  app: ReturnType<typeof imagesAppFor>,
  id: string,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const response = await app.request(`/images/jobs/${id}`, { headers });
    assert.equal(response.status, 200, await response.clone().text());
    const job = await response.json();
    if (["succeeded", "failed", "moderated"].includes(job.status) || Date.now() > deadline) {
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every call that reached the stand-in carried the service key, and nothing else, as credentials. */
function assertOnlyServiceCredentials(standin: SupabaseStandin, forbidden: string[] = []) {
  assert.ok(standin.requests.length > 0);
  for (const request of standin.requests) {
    const where = `${request.method} ${request.path}`;
    if (request.path.startsWith("/storage/v1/object/sign/") && request.method === "GET") {
      assert.equal(
        request.headers.authorization,
        undefined,
        `${where}: a signed download needs no credentials`,
      );
      continue;
    }
    assert.equal(request.headers.authorization, `Bearer ${SERVICE_KEY}`, where);
    assert.equal(request.headers.apikey, SERVICE_KEY, where);
    assert.notEqual(request.status, 401, where);
    for (const secret of forbidden) {
      assert.ok(
        !JSON.stringify(request.headers).includes(secret),
        `${where} carries the caller's credential`,
      );
    }
  }
}

Deno.test("end to end on Supabase: upload → BFL → stored result, served by a Storage signed URL", async () => {
  await withService(async ({ env, app, sim, localUser }) => {
    const upload = makePng(96, 64, 3);
    const form = new FormData();
    form.set("prompt", "Make the sky purple");
    form.set("output_format", "png");
    form.set("input_image", new File([upload], "sky.png", { type: "image/png" }));
    const created = await app.request("/images/jobs", { method: "POST", body: form });
    assert.equal(created.status, 202, await created.clone().text());
    const { id } = await created.json();

    const job = await followJob(app, id);
    assert.equal(job.status, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.inputs, [{
      slot: "input_image",
      kind: "upload",
      content_type: "image/png",
      bytes: upload.byteLength,
    }]);
    // BFL got exactly the uploaded bytes, read back from Storage through the adapter.
    assert.equal(sim.submissions.length, 1);
    assert.deepEqual(decodeBase64(sim.submissions[0].body.input_image as string), upload);

    const image = job.image as { url: string; content_type: string; bytes: number };
    assert.equal(image.content_type, "image/png");
    assert.ok(
      image.url.startsWith(`${env.standin.url}/storage/v1/object/sign/images/results/`),
      image.url,
    );
    const download = await fetch(image.url);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get("content-type"), "image/png");
    const bytes = new Uint8Array(await download.arrayBuffer());
    assert.equal(sniffImage(bytes)?.format, "png");
    assert.equal(bytes.byteLength, image.bytes);

    // The row in PostgreSQL, and both objects in storage.objects with their bytes on disk.
    const [row] = await env.db<
      {
        status: string;
        user_id: string;
        result_path: string;
        params_type: string;
        lease_owner: string | null;
      }[]
    >`
      select status, user_id::text, result_path, jsonb_typeof(params) as params_type, lease_owner
        from public.image_jobs where id = ${id}`;
    assert.deepEqual({ ...row }, {
      status: "succeeded",
      user_id: localUser,
      result_path: `results/${localUser}/${id}.png`,
      params_type: "object",
      lease_owner: null,
    });
    const objects = await env.db<{ name: string; mimetype: string; size: number }[]>`
      select name, metadata->>'mimetype' as mimetype, (metadata->>'size')::int as size
        from storage.objects where bucket_id = 'images' order by name`;
    assert.deepEqual(objects.map((o) => ({ ...o })), [
      {
        name: `inputs/${localUser}/${id}/input_image.png`,
        mimetype: "image/png",
        size: upload.byteLength,
      },
      { name: `results/${localUser}/${id}.png`, mimetype: "image/png", size: image.bytes },
    ]);
    for (const object of objects) {
      assert.equal(
        (await Deno.stat(`${env.standin.storageDir}/images/${object.name}`)).size,
        object.size,
      );
    }

    const listed = await (await app.request("/images/jobs")).json();
    assert.deepEqual(listed.data.map((j: { id: string }) => j.id), [id]);

    const paths = new Set(env.standin.requests.map((r) => `${r.method} ${r.path}`));
    for (
      const expected of [
        "POST /rest/v1/image_jobs",
        "GET /rest/v1/image_jobs",
        "POST /rest/v1/rpc/image_jobs_claim",
        "POST /rest/v1/rpc/image_jobs_transition",
        "POST /rest/v1/rpc/image_jobs_list",
        `POST /storage/v1/object/images/inputs/${localUser}/${id}/input_image.png`,
        `GET /storage/v1/object/images/inputs/${localUser}/${id}/input_image.png`,
        `POST /storage/v1/object/images/results/${localUser}/${id}.png`,
        `POST /storage/v1/object/sign/images/results/${localUser}/${id}.png`,
      ]
    ) {
      assert.ok(paths.has(expected), `the adapters went through ${expected}`);
    }
    assertOnlyServiceCredentials(env.standin);
  });
});

Deno.test("end to end on Supabase: a user's Authorization header never reaches Supabase", async () => {
  await withService(async ({ env, app, localUser, jwtSecret }) => {
    const user = await newUser(env.db);
    const token = await new SignJWT({ role: "authenticated" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user)
      .setIssuer(`${env.standin.url}/auth/v1`)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(jwtSecret));
    const auth = { authorization: `Bearer ${token}` };

    const created = await app.request("/images/jobs", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "A lighthouse at dusk", output_format: "jpeg" }),
    });
    assert.equal(created.status, 202, await created.clone().text());
    const { id } = await created.json();
    const job = await followJob(app, id, auth);
    assert.equal(job.status, "succeeded", JSON.stringify(job));

    const [row] = await env.db`select user_id::text from public.image_jobs where id = ${id}`;
    assert.equal(row.user_id, user, "the job belongs to the token's user");
    assert.equal(
      (await app.request(`/images/jobs/${id}`)).status,
      404,
      "the anonymous local user cannot see it",
    );
    assert.notEqual(user, localUser);
    const download = await fetch((job.image as { url: string }).url);
    assert.equal(sniffImage(new Uint8Array(await download.arrayBuffer()))?.format, "jpeg");

    assertOnlyServiceCredentials(env.standin, [token, token.split(".")[2]]);
  });
});

Deno.test("stop the shared PostgreSQL cluster", async () => {
  await stopSharedPostgresCluster();
});
