/**
 * Applies supabase/migrations/*.sql in order to a database that is not managed by the Supabase CLI,
 * after the shim that stands in for what Supabase provides. Applied versions are recorded in
 * supabase_migrations.schema_migrations, the table the Supabase CLI itself uses; the shim's
 * SHA-256 in supabase_migrations.shim_applied.
 *
 * Every function start calls this, so an up-to-date database is recognised with one query and
 * nothing else runs: re-running the shim's DDL and grants cost ~85 ms of a PGlite cold start.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { SqlClient } from "./sql-client.ts";

const MIGRATIONS_DIR = new URL("../../supabase/migrations/", import.meta.url);
const SHIM = new URL("./supabase-shim.sql", import.meta.url);

export async function listMigrations(dir: URL = MIGRATIONS_DIR): Promise<{ version: string; name: string; url: URL }[]> {
  const found = [];
  for await (const entry of Deno.readDir(dir)) {
    const match = /^(\d+)_(.+)\.sql$/.exec(entry.name);
    if (entry.isFile && match) found.push({ version: match[1], name: match[2], url: new URL(entry.name, dir) });
  }
  return found.sort((a, b) => a.version.localeCompare(b.version));
}

/** The versions recorded as applied (and `shim:<sha256>` rows), or null before the first run. */
async function recordedVersions(db: SqlClient): Promise<Set<string> | null> {
  const [exists] = await db.query<{ ready: boolean }>(
    "select to_regclass('supabase_migrations.shim_applied') is not null as ready",
  );
  if (!exists?.ready) return null;
  const rows = await db.query<{ version: string }>(
    `select version from supabase_migrations.schema_migrations
     union all select 'shim:' || sha256 from supabase_migrations.shim_applied`,
  );
  return new Set(rows.map((row) => row.version));
}

/** Returns the versions applied by this call. */
export async function applyMigrations(db: SqlClient, options: { shim?: boolean } = {}): Promise<string[]> {
  const migrations = await listMigrations();
  const shim = options.shim ?? true ? await Deno.readTextFile(SHIM) : null;
  const shimVersion = shim === null ? null : `shim:${createHash("sha256").update(shim).digest("hex")}`;
  const recorded = await recordedVersions(db);
  const current = recorded !== null && (shimVersion === null || recorded.has(shimVersion)) &&
    migrations.every((migration) => recorded.has(migration.version));
  if (current) return [];

  if (shim !== null) await db.exec(shim);
  await db.exec(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text primary key, name text, statements text[]
    );
    create table if not exists supabase_migrations.shim_applied (sha256 text primary key);`);
  if (shimVersion !== null) {
    await db.query("insert into supabase_migrations.shim_applied (sha256) values ($1) on conflict do nothing", [
      shimVersion.slice("shim:".length),
    ]);
  }
  const done = new Set(
    (await db.query<{ version: string }>("select version from supabase_migrations.schema_migrations"))
      .map((row) => row.version),
  );
  const applied: string[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    const script = await Deno.readTextFile(migration.url);
    try {
      // The file and its record commit together, so a failure leaves neither behind.
      await db.transaction(async (tx) => {
        await tx.exec(script);
        await tx.query(
          "insert into supabase_migrations.schema_migrations (version, name) values ($1, $2) on conflict do nothing",
          [migration.version, migration.name],
        );
      });
    } catch (error) {
      throw new Error(`Cannot apply migration ${migration.version}_${migration.name}: ${(error as Error).message}`);
    }
    applied.push(migration.version);
  }
  return applied;
}
