/**
 * Child process of the cold-start figure: where the `images` function's start-up time goes,
 * step by step, on the embedded store. Imports nothing statically, so the first mark is the
 * runtime's own start; each later import is incremental (what it adds to what is loaded).
 * Prints one JSON line of step → milliseconds.
 *
 *   DATA_DIR=<dir with an existing database> deno run -A bench/lib/cold-breakdown.ts
 *   DATA_DIR=<dir with an existing database> deno run -A bench/lib/cold-breakdown.ts --store-only
 *
 * With --store-only it measures only the two big parts of buildServices(), as the first things
 * this fresh process does with PGlite: openPglite(DATA_DIR) (which includes compiling
 * pglite.wasm and Postgres' first lazily compiled code paths) and applyMigrations() (the first SQL,
 * which loads plpgsql). Measured again after buildServices() in the same process they look much
 * cheaper: PGlite keeps the compiled module for the process, and V8 the code it compiled lazily.
 *
 * @module
 */
const marks: [string, number][] = [["runtime start → first line of user code", performance.now()]];

async function step<T>(name: string, work: () => Promise<T> | T): Promise<T> {
  const start = performance.now();
  const value = await work();
  marks.push([name, performance.now() - start]);
  return value;
}

if (Deno.args.includes("--store-only")) {
  const { openPglite } = await step(
    "import @electric-sql/pglite (shared/store/pglite-client.ts)",
    () => import("../../shared/store/pglite-client.ts"),
  );
  const { applyMigrations } = await import("../../shared/store/apply-migrations.ts");
  const { loadConfig } = await import("../../shared/config/load-config.ts");
  const config = await loadConfig();
  const sql = await step(
    "openPglite(DATA_DIR), first in a fresh process",
    () => openPglite(`${config.dataDir}/pglite`),
  );
  await step(
    "applyMigrations() on an up-to-date database, right after",
    () => applyMigrations(sql),
  );
  await sql.close();
  console.log(`COLD_JSON ${JSON.stringify(marks)}`);
  Deno.exit(0);
}

await step(
  "import @electric-sql/pglite (shared/store/pglite-client.ts)",
  () => import("../../shared/store/pglite-client.ts"),
);
await step(
  "import postgres.js (shared/store/postgres-client.ts)",
  () => import("../../shared/store/postgres-client.ts"),
);
await step(
  "import @supabase/supabase-js (shared/supabase/*)",
  () => import("../../shared/supabase/supabase-job-store.ts"),
);
await step(
  "import jose (shared/auth/create-authenticator.ts)",
  () => import("../../shared/auth/create-authenticator.ts"),
);
const api = await step(
  "import @hono/zod-openapi, zod and the API (shared/api/create-images-app.ts)",
  () => import("../../shared/api/create-images-app.ts"),
);
const wiring = await step(
  "import the rest (shared/wiring/build-services.ts: jobs, storage, BFL client)",
  () => import("../../shared/wiring/build-services.ts"),
);
await import("../../shared/wiring/start-function.ts");
const { loadConfig } = await import("../../shared/config/load-config.ts");
const { createLogger } = await import("../../shared/log/logger.ts");
const { openPglite } = await import("../../shared/store/pglite-client.ts");
const { applyMigrations } = await import("../../shared/store/apply-migrations.ts");

const config = await step("loadConfig()", () => loadConfig());
const log = createLogger({ minLevel: "error" });
const services = await step(
  "buildServices() (opens PGlite, applies migrations, ...)",
  () => wiring.buildServices(config, { log }),
);
const app = await step(
  "imagesAppFor() (routes, OpenAPI registration)",
  () => api.imagesAppFor(services),
);
await step("first request in-process (GET /images/health)", async () => {
  const response = await app.fetch(new Request("http://127.0.0.1/images/health"));
  return await response.text();
});
await services.close();

// The two big parts of buildServices() again, on the same (now closed) database, in this process:
// warm (the wasm module and lazily compiled code are reused), so NOT what they cost in a start —
// see --store-only for that.
const sql = await step(
  "(warm, same process) openPglite(DATA_DIR) again",
  () => openPglite(`${config.dataDir}/pglite`),
);
await step(
  "(warm, same process) applyMigrations() again",
  () => applyMigrations(sql),
);
await sql.close();

console.log(`COLD_JSON ${JSON.stringify(marks)}`);
