// Row level security and grants on a real PostgreSQL 15 server, applied the way PostgREST applies
// them: inside a transaction, `set local role <role>` and the JWT claims in request.jwt.claims.
// Also: the migrations apply on a plain server (no pg_net, vault or pg_cron) and with pg_cron.
import assert from "node:assert/strict";
import { rejectsWithSqlState } from "./support/sql-assertions.ts";
import type postgres from "postgres";
import { applyMigrations, listMigrations } from "../shared/store/apply-migrations.ts";
import { openPglite } from "../shared/store/pglite-client.ts";
import { openPostgres } from "../shared/store/postgres-client.ts";
import type { SqlClient } from "../shared/store/sql-client.ts";
import {
  connect,
  createTestDatabase,
  migratePostgres,
  pgCronInstalled,
  sharedPostgresCluster,
  startPostgresCluster,
  stopSharedPostgresCluster,
} from "./support/postgres-cluster.ts";

type Role = "anon" | "authenticated" | "service_role";

interface Seeded {
  url: string;
  alice: string;
  bob: string;
  aliceJobs: string[];
  bobJobs: string[];
}

let seeded: Promise<Seeded> | null = null;

/** One migrated database for the read-only RLS tests: alice owns two jobs, bob one. */
function seededDatabase(): Promise<Seeded> {
  seeded ??= (async () => {
    const cluster = await sharedPostgresCluster();
    const database = await createTestDatabase(cluster);
    await migratePostgres(database.url);
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const aliceJobs = [crypto.randomUUID(), crypto.randomUUID()];
    const bobJobs = [crypto.randomUUID()];
    const jobs = [...aliceJobs.map((id) => [id, alice]), ...bobJobs.map((id) => [id, bob])];
    await cluster.psql(
      `
      insert into auth.users (id) values ('${alice}'), ('${bob}');
      insert into public.image_jobs (id, user_id, model, params, status, webhook_secret, lease_owner, lease_until,
                                     provider_task_id, result_path)
      values ${
        jobs.map(([id, user], i) =>
          `('${id}', '${user}', 'flux-kontext-pro', '{"prompt":"p${i}"}', 'running', 'secret-${i}', 'worker', now() + interval '1 hour',
          'task-${i}', '${user}/${id}.png')`
        ).join(",\n")
      };`,
      { database: database.name },
    );
    return { url: database.url, alice, bob, aliceJobs, bobJobs };
  })();
  // A failed set-up is retried by the next test rather than failing them all the same way.
  seeded.catch(() => {
    seeded = null;
  });
  return seeded;
}

/** Runs `fn` in a transaction as PostgREST would for a request with this role and subject. */
async function asRole<T>(
  sql: postgres.Sql,
  role: Role,
  sub: string | null,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx.unsafe(`set local role ${role}`);
    const claims = JSON.stringify(sub ? { sub, role } : { role });
    await tx`select set_config('request.jwt.claims', ${claims}, true)`;
    return await fn(tx);
  }) as T;
}

/** A postgres.js client on the seeded database for the length of one test. */
async function withClient(fn: (sql: postgres.Sql, db: Seeded) => Promise<void>) {
  const db = await seededDatabase();
  const sql = connect(db.url);
  try {
    await fn(sql, db);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const sorted = (values: string[]) => [...values].sort();
const idsOf = (rows: readonly Record<string, unknown>[]) =>
  sorted(rows.map((row) => String(row.id)));

// The columns the migration grants to `authenticated`, and the bookkeeping it must not see.
const READABLE_COLUMNS = [
  "id",
  "user_id",
  "model",
  "params",
  "inputs",
  "status",
  "provider_status",
  "cost",
  "input_mp",
  "output_mp",
  "error_code",
  "error_message",
  "error_details",
  "result_path",
  "result_content_type",
  "result_bytes",
  "parent_job_id",
  "created_at",
  "updated_at",
  "submitted_at",
  "ready_at",
  "finished_at",
];
const HIDDEN_COLUMNS = [
  "webhook_secret",
  "lease_owner",
  "lease_until",
  "provider_task_id",
  "polling_url",
  "idempotency_key",
  "request_hash",
  "next_check_at",
  "submit_attempts",
  "poll_count",
  "last_checked_at",
];

Deno.test("RLS: an owner sees only their own jobs; another user sees none of them", async () => {
  await withClient(async (sql, db) => {
    const alices = await asRole(
      sql,
      "authenticated",
      db.alice,
      (tx) => tx`select id from public.image_jobs`,
    );
    assert.deepEqual(idsOf(alices), sorted(db.aliceJobs));
    const bobs = await asRole(
      sql,
      "authenticated",
      db.bob,
      (tx) => tx`select id from public.image_jobs`,
    );
    assert.deepEqual(idsOf(bobs), sorted(db.bobJobs));

    const snooping = await asRole(
      sql,
      "authenticated",
      db.bob,
      (tx) => tx`select id from public.image_jobs where id = any(${db.aliceJobs}::uuid[])`,
    );
    assert.deepEqual([...snooping], [], "bob cannot read alice's jobs even by id");
    const stranger = await asRole(
      sql,
      "authenticated",
      crypto.randomUUID(),
      (tx) => tx`select id from public.image_jobs`,
    );
    assert.deepEqual([...stranger], []);
    const noSubject = await asRole(
      sql,
      "authenticated",
      null,
      (tx) => tx`select id from public.image_jobs`,
    );
    assert.deepEqual([...noSubject], [], "an authenticated request without a subject sees nothing");
  });
});

Deno.test("RLS: an owner can read id, status, result_path and the other granted columns", async () => {
  await withClient(async (sql, db) => {
    const rows = await asRole(
      sql,
      "authenticated",
      db.alice,
      (tx) => tx`select id, status, result_path from public.image_jobs order by id`,
    );
    assert.deepEqual(
      rows.map((row) => ({ ...row })),
      sorted(db.aliceJobs).map((id) => ({
        id,
        status: "running",
        result_path: `${db.alice}/${id}.png`,
      })),
    );
    const all = await asRole(
      sql,
      "authenticated",
      db.alice,
      (tx) => tx.unsafe(`select ${READABLE_COLUMNS.join(", ")} from public.image_jobs`),
    );
    assert.equal(all.length, db.aliceJobs.length);
  });
});

Deno.test("RLS: authenticated cannot read the webhook secret, lease or other bookkeeping columns (42501)", async () => {
  await withClient(async (sql, db) => {
    for (const column of [...HIDDEN_COLUMNS, "*"]) {
      await rejectsWithSqlState(
        asRole(
          sql,
          "authenticated",
          db.alice,
          (tx) => tx.unsafe(`select ${column} from public.image_jobs`),
        ),
        "42501",
        /permission denied/,
      );
    }
    // Not even through a filter or an ordering.
    await rejectsWithSqlState(
      asRole(
        sql,
        "authenticated",
        db.alice,
        (tx) => tx`select id from public.image_jobs where webhook_secret = 'secret-0'`,
      ),
      "42501",
    );
  });
});

Deno.test("RLS: anon sees nothing (permission denied), even with a subject in its claims", async () => {
  await withClient(async (sql, db) => {
    for (const sub of [null, db.alice]) {
      await rejectsWithSqlState(
        asRole(sql, "anon", sub, (tx) => tx`select id from public.image_jobs`),
        "42501",
        /permission denied for table image_jobs/,
      );
    }
  });
});

Deno.test("RLS: authenticated and anon cannot insert, update or delete (42501)", async () => {
  await withClient(async (sql, db) => {
    const own = db.aliceJobs[0];
    for (const role of ["authenticated", "anon"] as const) {
      await rejectsWithSqlState(
        asRole(
          sql,
          role,
          db.alice,
          (tx) =>
            tx`insert into public.image_jobs (user_id, model, params) values (${db.alice}, 'flux-kontext-pro', '{}'::jsonb)`,
        ),
        "42501",
      );
      await rejectsWithSqlState(
        asRole(
          sql,
          role,
          db.alice,
          (tx) => tx`update public.image_jobs set status = 'failed' where id = ${own}`,
        ),
        "42501",
      );
      await rejectsWithSqlState(
        asRole(
          sql,
          role,
          db.alice,
          (tx) => tx`update public.image_jobs set result_path = 'elsewhere' where id = ${own}`,
        ),
        "42501",
      );
      await rejectsWithSqlState(
        asRole(sql, role, db.alice, (tx) => tx`delete from public.image_jobs where id = ${own}`),
        "42501",
      );
    }
    const after =
      await sql`select count(*)::int as n, count(*) filter (where status = 'running')::int as running
                              from public.image_jobs`;
    assert.deepEqual({ ...after[0] }, { n: 3, running: 3 }, "nothing changed");
  });
});

Deno.test("RLS: authenticated and anon cannot execute the state-changing functions (42501)", async () => {
  await withClient(async (sql, db) => {
    const own = db.aliceJobs[0];
    const calls: [string, (tx: postgres.TransactionSql) => Promise<unknown>][] = [
      [
        "image_jobs_claim_due",
        (tx) => tx`select * from public.image_jobs_claim_due('intruder', 10, 60)`,
      ],
      [
        "image_jobs_transition",
        (tx) =>
          tx`select * from public.image_jobs_transition(${own}::uuid, 'worker', '{running}'::text[], '{"status":"succeeded"}'::jsonb)`,
      ],
      [
        "image_jobs_claim",
        (tx) => tx`select * from public.image_jobs_claim(${own}::uuid, 'intruder', 60, false)`,
      ],
      ["image_jobs_active_counts", (tx) => tx`select * from public.image_jobs_active_counts()`],
      ["image_jobs_list", (tx) => tx`select id from public.image_jobs_list(${db.bob}::uuid, 10)`],
    ];
    for (const role of ["authenticated", "anon"] as const) {
      for (const [name, call] of calls) {
        await rejectsWithSqlState(
          asRole(sql, role, db.alice, call),
          "42501",
          new RegExp(`permission denied for function ${name}`),
        );
      }
    }
    const leases = await sql`select distinct lease_owner, status from public.image_jobs`;
    assert.deepEqual(leases.map((row) => ({ ...row })), [{
      lease_owner: "worker",
      status: "running",
    }]);
  });
});

Deno.test("RLS: service_role can call the job functions", async () => {
  await withClient(async (sql, db) => {
    await asRole(sql, "service_role", null, async (tx) => {
      const listed = await tx`select id from public.image_jobs_list(${db.alice}::uuid, 10)`;
      assert.deepEqual(idsOf(listed), sorted(db.aliceJobs));
      const counts = await tx`select model, active::int from public.image_jobs_active_counts()`;
      assert.deepEqual(counts.map((row) => ({ ...row })), [{
        model: "flux-kontext-pro",
        active: 3,
      }]);
      // Calls that change nothing: every job is leased, and 'nobody' holds no lease.
      assert.equal(
        (await tx`select * from public.image_jobs_claim_due('sweeper', 10, 60)`).length,
        0,
      );
      assert.equal(
        (await tx`select * from public.image_jobs_claim(${db.aliceJobs[0]}::uuid, 'x', 60, false)`)
          .length,
        0,
      );
      assert.equal(
        (await tx`select * from public.image_jobs_transition(${
          db.aliceJobs[0]
        }::uuid, 'nobody', '{running}'::text[],
                                                            '{"status":"failed"}'::jsonb)`).length,
        0,
      );
    });
  });
});

Deno.test("RLS: service_role reads every row and every column", async () => {
  await withClient(async (sql, db) => {
    const rows = await asRole(
      sql,
      "service_role",
      null,
      (tx) => tx`select id, webhook_secret, lease_owner from public.image_jobs`,
    );
    assert.deepEqual(idsOf(rows), sorted([...db.aliceJobs, ...db.bobJobs]));
    assert.ok(
      rows.every((row) => typeof row.webhook_secret === "string" && row.lease_owner === "worker"),
    );
  });
});

// Supabase creates every object in `public` with EXECUTE/ALL granted to anon, authenticated and
// service_role through default privileges (as in supabase/realtime dev/postgres/00-setup.sql:
// `alter default privileges in schema public grant all on functions to anon, authenticated,
// service_role`). The shim does not, so reproduce it on a database of its own.
async function withSupabaseLikeDatabase(fn: (sql: postgres.Sql, url: string) => Promise<void>) {
  const cluster = await sharedPostgresCluster();
  const database = await createTestDatabase(cluster);
  const setup = connect(database.url);
  try {
    await setup.unsafe(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
        if not exists (select 1 from pg_roles where rolname = 'authenticated') then create role authenticated nologin noinherit; end if;
        if not exists (select 1 from pg_roles where rolname = 'service_role') then create role service_role nologin noinherit bypassrls; end if;
      end $$;
      grant usage on schema public to anon, authenticated, service_role;
      alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
      alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
      alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;`);
    await migratePostgres(database.url);
    await fn(setup, database.url);
  } finally {
    await setup.end({ timeout: 5 });
    await database.drop();
  }
}

Deno.test("RLS on a Supabase-like database: the table grants still keep authenticated read-only", async () => {
  await withSupabaseLikeDatabase(async (sql) => {
    const user = crypto.randomUUID();
    const job = crypto.randomUUID();
    await sql`insert into auth.users (id) values (${user})`;
    await sql`insert into public.image_jobs (id, user_id, model, params) values (${job}, ${user}, 'flux-kontext-pro', '{}'::jsonb)`;
    const own = await asRole(
      sql,
      "authenticated",
      user,
      (tx) => tx`select id from public.image_jobs`,
    );
    assert.deepEqual(idsOf(own), [job]);
    await rejectsWithSqlState(
      asRole(sql, "authenticated", user, (tx) => tx`select webhook_secret from public.image_jobs`),
      "42501",
    );
    await rejectsWithSqlState(
      asRole(sql, "anon", null, (tx) => tx`select id from public.image_jobs`),
      "42501",
    );
    await rejectsWithSqlState(
      asRole(
        sql,
        "authenticated",
        user,
        (tx) => tx`update public.image_jobs set status = 'failed' where id = ${job}`,
      ),
      "42501",
    );
    // The functions run as the caller, who may neither execute them nor update the table.
    await rejectsWithSqlState(
      asRole(
        sql,
        "authenticated",
        user,
        (tx) => tx`select * from public.image_jobs_claim_due('intruder', 10, 60)`,
      ),
      "42501",
    );
    await rejectsWithSqlState(
      asRole(
        sql,
        "anon",
        null,
        (tx) => tx`select * from public.image_jobs_claim(${job}::uuid, 'intruder', 60, false)`,
      ),
      "42501",
    );
    const rows = await sql`select lease_owner, status from public.image_jobs`;
    assert.deepEqual(rows.map((row) => ({ ...row })), [{ lease_owner: null, status: "queued" }]);
  });
});

// Regression: the migration used to revoke EXECUTE on the job functions only `from public`, which
// leaves Supabase's explicit default-privilege grants to anon and authenticated in place.
Deno.test({
  name:
    "RLS on a Supabase-like database: anon and authenticated hold no EXECUTE on the job functions",
  fn: async () => {
    await withSupabaseLikeDatabase(async (sql) => {
      const rows = await sql`
        select r.rolname, p.oid::regprocedure::text as fn, has_function_privilege(r.oid, p.oid, 'execute') as can
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          cross join pg_roles r
         where n.nspname = 'public'
           and p.proname in ('image_jobs_claim', 'image_jobs_claim_due', 'image_jobs_transition',
                             'image_jobs_active_counts', 'image_jobs_list')
           and r.rolname in ('anon', 'authenticated')
         order by 1, 2`;
      assert.equal(rows.length, 10);
      assert.deepEqual(rows.filter((row) => row.can).map((row) => `${row.rolname}: ${row.fn}`), []);
    });
  },
});

// ---------------------------------------------------------------------------------------------
// Applying the migrations

Deno.test("migrations apply on a plain PostgreSQL without pg_net, vault or pg_cron", async () => {
  const cluster = await sharedPostgresCluster();
  const database = await createTestDatabase(cluster);
  const sql = connect(database.url);
  try {
    const present =
      await sql`select extname from pg_extension where extname in ('pg_net', 'supabase_vault', 'pg_cron')`;
    assert.deepEqual([...present], []);
    const schemas =
      await sql`select nspname from pg_namespace where nspname in ('net', 'vault', 'cron')`;
    assert.deepEqual([...schemas], []);

    const applied = await migratePostgres(database.url);
    assert.deepEqual(applied, (await listMigrations()).map((migration) => migration.version));
    const table = await sql`select to_regclass('public.image_jobs')::text as name`;
    assert.equal(table[0].name, "image_jobs");
    assert.deepEqual(await migratePostgres(database.url), [], "a second run applies nothing");
    // The optional extensions were tried and skipped, leaving nothing half-made behind.
    const after =
      await sql`select extname from pg_extension where extname in ('pg_net', 'supabase_vault', 'pg_cron')`;
    assert.deepEqual([...after], []);
    const afterSchemas =
      await sql`select nspname from pg_namespace where nspname in ('net', 'vault', 'cron')`;
    assert.deepEqual([...afterSchemas], []);
    const published = await sql`select count(*)::int as n from pg_publication`;
    assert.equal(published[0].n, 0);
  } finally {
    await sql.end({ timeout: 5 });
    await database.drop();
  }
});

// Regression: applyMigrations used to send `begin; <file> commit;` through exec, which postgres.js
// refuses on a pool (UNSAFE_TRANSACTION), so STORE=postgres could never start.
Deno.test({
  name: "migrations apply through openPostgres() with its default pool, as buildServices does",
  fn: async () => {
    const cluster = await sharedPostgresCluster();
    const database = await createTestDatabase(cluster);
    const sql = openPostgres(database.url);
    try {
      const applied = await applyMigrations(sql);
      assert.deepEqual(applied, (await listMigrations()).map((migration) => migration.version));
      assert.deepEqual(await applyMigrations(sql), []);
    } finally {
      await sql.close();
      await database.drop();
    }
  },
});

// A migration that fails half-way must leave neither its objects nor its record behind, and the
// client (a pool, for postgres) must stay usable: on both SQL backends.
for (const backend of ["postgres", "pglite"] as const) {
  Deno.test(`a failing migration rolls back completely and leaves the client usable [${backend}]`, async () => {
    const database = backend === "postgres"
      ? await createTestDatabase(await sharedPostgresCluster())
      : null;
    const sql: SqlClient = database ? openPostgres(database.url) : await openPglite();
    try {
      // A function the first migration redefines with another return type: `create or replace`
      // fails (42P13) after the table and indexes were already created in the same file.
      await sql.exec(
        "create function public.image_jobs_active_counts() returns integer language sql as 'select 1'",
      );
      await assert.rejects(
        applyMigrations(sql),
        /Cannot apply migration 20261121000100_image_jobs: .*return type/,
      );
      const left = await sql.query<{ table: string | null; recorded: unknown }>(
        `select to_regclass('public.image_jobs')::text as table,
                (select count(*) from supabase_migrations.schema_migrations) as recorded`,
      );
      assert.deepEqual(left.map((row) => ({ ...row, recorded: Number(row.recorded) })), [{
        table: null,
        recorded: 0,
      }]);
      // Every connection of the pool still works (none is stuck in an aborted transaction).
      const pings = await Promise.all(
        Array.from({ length: 12 }, () => sql.query<{ one: number }>("select 1 as one")),
      );
      assert.ok(pings.every((rows) => rows[0].one === 1));

      await sql.exec("drop function public.image_jobs_active_counts()");
      assert.deepEqual(
        await applyMigrations(sql),
        (await listMigrations()).map((migration) => migration.version),
      );
    } finally {
      await sql.close();
      await database?.drop();
    }
  });
}

Deno.test("migrations add image_jobs to an existing supabase_realtime publication, once", async () => {
  const cluster = await sharedPostgresCluster();
  const database = await createTestDatabase(cluster);
  const sql = connect(database.url);
  try {
    await sql`create publication supabase_realtime`;
    await migratePostgres(database.url);
    const tables = sql`select schemaname || '.' || tablename as name from pg_publication_tables
                        where pubname = 'supabase_realtime'`;
    assert.deepEqual((await tables).map((row) => row.name), ["public.image_jobs"]);
    await sql`delete from supabase_migrations.schema_migrations`;
    await migratePostgres(database.url);
    assert.deepEqual((await tables).map((row) => row.name), ["public.image_jobs"]);
  } finally {
    await sql.end({ timeout: 5 });
    await database.drop();
  }
});

Deno.test({
  name: "migrations apply on a PostgreSQL with pg_cron preloaded (no pg_net or vault)",
  ignore: !pgCronInstalled(), // optional here: apt-get install postgresql-15-cron (CI installs it)
  fn: async () => {
    const cluster = await startPostgresCluster({ cron: true });
    try {
      assert.equal(cluster.hasCron, true);
      assert.equal(await cluster.psql("show shared_preload_libraries"), "pg_cron");
      const versions = (await listMigrations()).map((migration) => migration.version);

      // In cron.database_name (postgres) pg_cron can be created: the migrations enable it
      // themselves, and schedule nothing without pg_net and Vault.
      assert.deepEqual(await migratePostgres(cluster.url), versions);
      assert.equal(await cluster.psql("select to_regclass('public.image_jobs')"), "image_jobs");
      assert.equal(
        await cluster.psql("select count(*) from pg_extension where extname = 'pg_cron'"),
        "1",
      );
      assert.equal(await cluster.psql("select count(*) from cron.job"), "0");
      assert.deepEqual(await migratePostgres(cluster.url), []);
      // Re-running every file with pg_cron already there is harmless too.
      await cluster.psql("delete from supabase_migrations.schema_migrations");
      assert.deepEqual(await migratePostgres(cluster.url), versions);
      assert.equal(await cluster.psql("select count(*) from cron.job"), "0");

      // Any other database: pg_cron cannot be created there, and the migrations still apply.
      const other = await createTestDatabase(cluster);
      try {
        assert.deepEqual(await migratePostgres(other.url), versions);
        assert.equal(
          await cluster.psql("select count(*) from pg_extension where extname = 'pg_cron'", {
            database: other.name,
          }),
          "0",
        );
      } finally {
        await other.drop();
      }
    } finally {
      await cluster.stop();
    }
  },
});

Deno.test("stop the shared PostgreSQL cluster", async () => {
  await stopSharedPostgresCluster();
});
