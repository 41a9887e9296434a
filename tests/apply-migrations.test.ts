// applyMigrations runs at every function start: an up-to-date database must be recognised without
// re-running the shim or any migration, while a new migration or a changed shim still applies.
import assert from "node:assert/strict";
import { applyMigrations, listMigrations } from "../shared/store/apply-migrations.ts";
import { openPglite } from "../shared/store/pglite-client.ts";
import type { SqlClient } from "../shared/store/sql-client.ts";

/** Wraps a client and records what is sent through it (not through transactions). */
function recording(db: SqlClient) {
  const calls: string[] = [];
  const client: SqlClient = {
    query: (text, params) => (calls.push(`query: ${text.trim().split("\n")[0]}`), db.query(text, params)),
    exec: (script) => (calls.push(`exec: ${script.trim().split("\n")[0]}`), db.exec(script)),
    transaction: (work) => (calls.push("transaction"), db.transaction(work)),
    close: () => db.close(),
  };
  return { client, calls };
}

Deno.test("applyMigrations: a current database costs two reads; a new migration or shim still applies", async () => {
  const db = await openPglite();
  try {
    const versions = (await listMigrations()).map((m) => m.version);
    assert.deepEqual(await applyMigrations(db), versions, "a fresh database gets every migration");

    const again = recording(db);
    assert.deepEqual(await applyMigrations(again.client), []);
    assert.equal(again.calls.length, 2, again.calls.join("\n"));
    assert.ok(again.calls.every((call) => call.startsWith("query: select")), "only reads");

    // A migration not yet recorded (as after deploying a new file) is applied, and only it.
    const last = versions[versions.length - 1];
    await db.query("delete from supabase_migrations.schema_migrations where version = $1", [last]);
    const newer = recording(db);
    assert.deepEqual(await applyMigrations(newer.client), [last]);
    assert.equal(newer.calls.filter((call) => call === "transaction").length, 1);

    // A changed shim (its hash not recorded) runs again.
    await db.query("delete from supabase_migrations.shim_applied");
    const shim = recording(db);
    assert.deepEqual(await applyMigrations(shim.client), []);
    assert.ok(shim.calls.some((call) => call.startsWith("exec: -- What a Supabase project provides")), shim.calls.join("\n"));
    assert.equal((await recording(db).client.query("select count(*)::int as n from supabase_migrations.shim_applied"))[0].n, 1);

    const after = recording(db);
    assert.deepEqual(await applyMigrations(after.client), []);
    assert.equal(after.calls.length, 2);
  } finally {
    await db.close();
  }
});
