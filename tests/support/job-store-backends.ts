/**
 * The JobStore adapters a contract suite runs on, each over a fresh migrated database:
 *
 * - `pglite`: SqlJobStore over in-memory PGlite;
 * - `postgres`: SqlJobStore over a real PostgreSQL server (postgres.js pool), a fresh database on
 *   the module's shared cluster;
 * - `supabase`: SupabaseJobStore over supabase-js, talking to the PostgREST/Storage stand-in
 *   (tests/support/supabase-standin.ts) on a fresh database on the same shared cluster.
 *
 * Every opened store also gives direct SQL on its database (setup and assertions that bypass the
 * store). A module using the `postgres` or `supabase` backend stops the shared cluster with
 * stopSharedPostgresCluster() in a final test.
 *
 * @module
 */
import { applyMigrations } from "../../shared/store/apply-migrations.ts";
import type { JobStore } from "../../shared/store/job-store.ts";
import { openPostgres } from "../../shared/store/postgres-client.ts";
import type { SqlClient } from "../../shared/store/sql-client.ts";
import { SqlJobStore } from "../../shared/store/sql-job-store.ts";
import { createAdminClient } from "../../shared/supabase/create-admin-client.ts";
import { SupabaseJobStore } from "../../shared/supabase/supabase-job-store.ts";
import {
  createTestDatabase,
  describeStores,
  migratePostgres,
  sharedPostgresCluster,
} from "./postgres-cluster.ts";
import { startSupabaseStandin, type SupabaseStandin } from "./supabase-standin.ts";

export type StoreBackendName = "pglite" | "postgres" | "supabase";

export interface OpenedStore {
  store: JobStore;
  /** Direct SQL on the store's database, as its owner (bypasses the store, PostgREST, RLS). */
  sql: SqlClient;
  /** applyMigrations() on this database again, through `sql`. */
  migrate(): Promise<string[]>;
  /** A user that exists in auth.users. */
  newUser(): Promise<string>;
  /** Whether the store's calls really run concurrently on the database (a pool) or are serialised. */
  concurrent: boolean;
  close(): Promise<void>;
}

export interface StoreBackend {
  name: StoreBackendName;
  /**
   * How the store surfaces a failed statement: `code`, the driver's error with the SQLSTATE in
   * `.code` (PGlite, postgres.js); `message`, an Error whose message is
   * `Cannot <action>: <database message> (<SQLSTATE>)` (SupabaseJobStore).
   */
  sqlStateIn: "code" | "message";
  /** A fresh, migrated database and a store on it. */
  open(): Promise<OpenedStore>;
}

/** A fresh migrated database on the shared cluster, with the Supabase stand-in serving it. */
export interface SupabaseStandinDatabase {
  databaseUrl: string;
  standin: SupabaseStandin;
  /** Stops the stand-in and drops the database. */
  close(): Promise<void>;
}

export async function openSupabaseStandinDatabase(
  serviceKey: string,
): Promise<SupabaseStandinDatabase> {
  const cluster = await sharedPostgresCluster();
  const database = await createTestDatabase(cluster);
  let standin: SupabaseStandin;
  try {
    await migratePostgres(database.url);
    standin = await startSupabaseStandin({ databaseUrl: database.url, serviceKey });
  } catch (error) {
    await database.drop();
    throw error;
  }
  return {
    databaseUrl: database.url,
    standin,
    async close() {
      try {
        await standin.close();
      } finally {
        await database.drop();
      }
    },
  };
}

const SERVICE_KEY = `sb_secret_standin_${crypto.randomUUID().replaceAll("-", "")}`;

/** pglite, postgres and supabase, in that order. */
export function storeBackends(): StoreBackend[] {
  const sqlBackends: StoreBackend[] = describeStores().map((backend) => ({
    name: backend.name,
    sqlStateIn: "code",
    async open() {
      const opened = await backend.open();
      const store = new SqlJobStore(opened.sql);
      return {
        store,
        sql: opened.sql,
        migrate: opened.migrate,
        async newUser() {
          const id = crypto.randomUUID();
          await store.ensureUser(id);
          return id;
        },
        concurrent: backend.concurrent,
        // store.close() would close opened.sql too; opened.close() also drops the database.
        close: opened.close,
      };
    },
  }));
  return [...sqlBackends, {
    name: "supabase",
    sqlStateIn: "message",
    async open() {
      const stack = await openSupabaseStandinDatabase(SERVICE_KEY);
      const sql = openPostgres(stack.databaseUrl, { max: 4 });
      const store = new SupabaseJobStore(createAdminClient(stack.standin.url, SERVICE_KEY));
      return {
        store,
        sql,
        migrate: () => applyMigrations(sql),
        // SupabaseJobStore has no ensureUser: Supabase Auth owns auth.users.
        async newUser() {
          const id = crypto.randomUUID();
          await sql.query("insert into auth.users (id, email) values ($1, $2)", [
            id,
            `${id}@example.test`,
          ]);
          return id;
        },
        concurrent: true,
        async close() {
          try {
            await store.close();
            await sql.close();
          } finally {
            await stack.close();
          }
        },
      };
    },
  }];
}
