/**
 * Applies supabase/migrations/*.sql in order to a database that is not managed by the Supabase CLI,
 * after the shim that stands in for what Supabase provides. Applied versions are recorded in
 * supabase_migrations.schema_migrations, the table the Supabase CLI itself uses.
 *
 * @module
 */
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

/** Returns the versions applied by this call. */
export async function applyMigrations(db: SqlClient, options: { shim?: boolean } = {}): Promise<string[]> {
  if (options.shim ?? true) await db.exec(await Deno.readTextFile(SHIM));
  await db.exec(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text primary key, name text, statements text[]
    );`);
  const done = new Set(
    (await db.query<{ version: string }>("select version from supabase_migrations.schema_migrations"))
      .map((row) => row.version),
  );
  const applied: string[] = [];
  for (const migration of await listMigrations()) {
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
