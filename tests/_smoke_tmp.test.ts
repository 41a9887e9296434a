import assert from "node:assert/strict";
import { startPostgresCluster, sharedPostgresCluster } from "./support/postgres-cluster.ts";
Deno.test("smoke", async () => {
  const t0 = Date.now();
  const c = await startPostgresCluster({ cron: true });
  console.log("started in", Date.now() - t0, c.url, c.hasCron);
  assert.equal(await c.psql("select 1+1"), "2");
  console.log(await c.psql("show shared_preload_libraries; create extension pg_cron; select count(*) from cron.job"));
  await c.stop();
  console.log("stopped", Date.now() - t0);
});
Deno.test("leak shared", async () => {
  const c = await sharedPostgresCluster();
  console.log(c.dataDir);
  await Deno.writeTextFile("/tmp/scratch/dir", c.dataDir);
});
