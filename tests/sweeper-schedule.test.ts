// The pg_cron schedule migration on a real PostgreSQL with pg_cron preloaded. pg_net and Vault are
// Supabase extensions that cannot be installed here, so the test gives the database stand-ins with
// their documented signatures (net.http_post records its calls; vault.decrypted_secrets is a view
// over a table), then runs the scheduled command itself and checks the request it would send.
import assert from "node:assert/strict";
import { connect, migratePostgres, pgCronInstalled, startPostgresCluster } from "./support/postgres-cluster.ts";

const STANDINS = `
  create schema if not exists net;
  create table net.calls (url text, headers jsonb, body jsonb, timeout_milliseconds int);
  create function net.http_post(
    url text, body jsonb default '{}', params jsonb default '{}',
    headers jsonb default '{"Content-Type": "application/json"}', timeout_milliseconds integer default 5000
  ) returns bigint language sql as $$
    insert into net.calls values (url, headers, body, timeout_milliseconds) returning 1::bigint
  $$;
  create schema if not exists vault;
  create table vault.secrets (name text primary key, secret text);
  create view vault.decrypted_secrets as select name, secret as decrypted_secret from vault.secrets;
`;

Deno.test({
  name: "the sweeper schedule calls the sweeper function with the Vault secrets, once, and re-applies cleanly",
  ignore: !pgCronInstalled(),
  fn: async () => {
    const cluster = await startPostgresCluster({ cron: true });
    const sql = connect(cluster.url);
    try {
      assert.ok(cluster.hasCron, "pg_cron is preloaded");
      await sql.unsafe(STANDINS);
      await migratePostgres(cluster.url);

      const jobs = await sql`select jobname, schedule, command from cron.job`;
      assert.equal(jobs.length, 1);
      assert.equal(jobs[0].jobname, "image-jobs-sweeper");
      // pg_cron 1.5+ takes "5 seconds"; older versions fall back to every minute.
      assert.ok(["5 seconds", "* * * * *"].includes(jobs[0].schedule), jobs[0].schedule);

      // Without the Vault secrets the command sends nothing (no half-configured calls).
      await sql.unsafe(jobs[0].command);
      assert.equal((await sql`select count(*)::int as n from net.calls`)[0].n, 0);

      await sql`insert into vault.secrets values ('project_url', 'https://ref.supabase.co'), ('sweeper_secret', 's3cret')`;
      await sql.unsafe(jobs[0].command);
      const calls = await sql`select url, headers, timeout_milliseconds from net.calls`;
      assert.equal(calls.length, 1);
      assert.equal(calls[0].url, "https://ref.supabase.co/functions/v1/sweeper");
      assert.equal(calls[0].headers.authorization, "Bearer s3cret");
      assert.ok(calls[0].timeout_milliseconds <= 5000);

      // Applying the schedule migration again replaces the job instead of adding a second one.
      const file = new URL("../supabase/migrations/20261121000300_sweeper_schedule.sql", import.meta.url);
      await sql.unsafe(await Deno.readTextFile(file));
      assert.equal((await sql`select count(*)::int as n from cron.job`)[0].n, 1);
    } finally {
      await sql.end({ timeout: 5 });
      await cluster.stop();
    }
  },
});
