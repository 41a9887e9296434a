/**
 * Child process of the request-overhead figure: one PostgreSQL round trip from Deno 2.1.4 with
 * postgres.js configured as shared/store/postgres-client.ts configures it, with prepared
 * statements, and with npm:pg (node-postgres) for comparison — to tell the driver's share of a
 * status read on PostgreSQL from the database's. Prints one JSON line of name → µs per query.
 * Run with --no-lock (npm:pg is loaded from a specifier type checking does not follow).
 *
 *   DATABASE_URL=... JOB_ID=... USER_ID=... deno run --no-lock -A bench/lib/pg-clients.ts
 *
 * @module
 */
import postgres from "postgres";
import { openPostgres } from "../../shared/store/postgres-client.ts";

const url = Deno.env.get("DATABASE_URL")!;
const jobId = Deno.env.get("JOB_ID")!;
const userId = Deno.env.get("USER_ID")!;
const iterations = Number(Deno.env.get("ITERATIONS") ?? 300);
const BY_ID = "select * from public.image_jobs where id = $1 and user_id = $2";

async function perCall(work: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 30; i++) await work();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await work();
  return ((performance.now() - start) / iterations) * 1000;
}

const out: Record<string, number> = {};
const shared = openPostgres(url, { max: 1 });
out["postgres.js as configured (prepare: false): select 1"] = await perCall(() =>
  shared.query("select 1")
);
out["postgres.js as configured (prepare: false): the store's select by id"] = await perCall(() =>
  shared.query(BY_ID, [jobId, userId])
);
await shared.close();

const prepared = postgres(url, { max: 1, prepare: true, onnotice: () => {} });
out["postgres.js, prepare: true: the store's select by id"] = await perCall(() =>
  prepared.unsafe(BY_ID, [jobId, userId], { prepare: true })
);
await prepared.end({ timeout: 5 });

try {
  const specifier: string = "npm:pg@8.16.3";
  // deno-lint-ignore no-explicit-any
  const pg: any = (await import(specifier)).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  out["npm:pg@8.16.3: select 1"] = await perCall(() => client.query("select 1"));
  out["npm:pg@8.16.3: the store's select by id"] = await perCall(() =>
    client.query(BY_ID, [jobId, userId])
  );
  await client.end();
} catch (error) {
  console.error(`npm:pg not measured: ${(error as Error).message}`);
}

// Deno's own TCP, for the floor: a loopback echo of a few bytes.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
(async () => {
  for await (const conn of listener) {
    (async () => {
      const buffer = new Uint8Array(64);
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) break;
        await conn.write(buffer.subarray(0, n));
      }
    })();
  }
})();
const conn = await Deno.connect({
  hostname: "127.0.0.1",
  port: (listener.addr as Deno.NetAddr).port,
});
const buffer = new Uint8Array(64);
out["Deno.connect loopback echo (no database)"] = await perCall(async () => {
  await conn.write(new Uint8Array([1, 2, 3]));
  await conn.read(buffer);
});
conn.close();
listener.close();

console.log(`PG_JSON ${JSON.stringify(out)}`);
Deno.exit(0);
