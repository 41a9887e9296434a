/**
 * Figure 5 — cold start: from spawning `deno run` to the first answered request, for each Edge
 * Function entry point (functions/images, functions/sweeper, functions/bfl-webhook) and the bare
 * Hono app, with a warm module cache (each entry is started once before the measured starts).
 *
 * The function entry points read their config from the environment: the embedded store (DATA_DIR
 * a temporary folder, ALLOW_ANONYMOUS=true), the simulator as BFL, a SWEEPER_SECRET. Their
 * `Deno.serve(handler)` would take port 8000, so every entry (the bare app included) runs through
 * bench/lib/serve-entry.ts, which puts it on a free loopback port. The client tries to connect
 * every 2 ms until the first answer.
 *
 * The main figure restarts on an existing DATA_DIR (a process restart); the first start on an
 * empty DATA_DIR (PGlite creating its database) and the PostgreSQL store (DATABASE_URL) are given
 * for information, with a step-by-step breakdown of the images function's start.
 *
 * @module
 */
import { createTestDatabase } from "../../tests/support/postgres-cluster.ts";
import { startSupabaseStandin } from "../../tests/support/supabase-standin.ts";
import { type BenchContext, simulatorEnv } from "./context.ts";
import { Child, childEnv, CONFIG, freePort, ROOT, SERVICE_PERMISSIONS } from "./procs.ts";
import { newSection, type Section, verdict } from "./report.ts";
import { median, ms, ratio, sleep } from "./stats.ts";

export interface Entry {
  name: string;
  path: string;
  request(origin: string): Request;
  expect: number;
}

export const SWEEPER_SECRET = "bench-sweeper-secret";
/** The measured entry points, the bare app first, each with a first request that needs no BFL. */
export const ENTRIES: Entry[] = [
  {
    name: "bare Hono app",
    path: "bench/bare-hono.ts",
    request: (o) => new Request(`${o}/`),
    expect: 200,
  },
  {
    name: "images",
    path: "functions/images/index.ts",
    request: (o) => new Request(`${o}/images/health`),
    expect: 200,
  },
  {
    name: "sweeper",
    path: "functions/sweeper/index.ts",
    request: (o) =>
      new Request(`${o}/sweeper`, {
        method: "POST",
        headers: { authorization: `Bearer ${SWEEPER_SECRET}` },
      }),
    expect: 202,
  },
  {
    name: "bfl-webhook",
    path: "functions/bfl-webhook/index.ts",
    request: (o) =>
      new Request(`${o}/bfl-webhook/jobs/${crypto.randomUUID()}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-webhook-secret": "x" },
        body: "{}",
      }),
    expect: 200,
  },
];

/** One start: spawn → first answer (ms). */
async function startOnce(entry: Entry, env: Record<string, string>): Promise<number> {
  const port = freePort();
  const origin = `http://127.0.0.1:${port}`;
  if (env.DATA_DIR) await Deno.mkdir(env.DATA_DIR, { recursive: true });
  const child = new Child(`cold ${entry.name}`, [
    "run",
    "--config",
    CONFIG,
    ...SERVICE_PERMISSIONS,
    `${ROOT}/bench/lib/serve-entry.ts`,
    `${ROOT}/${entry.path}`,
  ], { env: childEnv({ ...env, BENCH_PORT: String(port) }), cwd: env.DATA_DIR });
  try {
    while (true) {
      if (child.exited) throw new Error(`${entry.name} exited before answering:\n${child.tail()}`);
      if (performance.now() - child.spawnedAt > 60_000) {
        throw new Error(`${entry.name} did not answer within 60 s`);
      }
      try {
        const response = await fetch(entry.request(origin));
        const body = await response.text();
        const elapsed = performance.now() - child.spawnedAt;
        if (response.status !== entry.expect) {
          throw new Error(`${entry.name} answered ${response.status}: ${body.slice(0, 300)}`);
        }
        return elapsed;
      } catch (error) {
        if (!(error instanceof TypeError)) throw error; // connection refused: not listening yet
        await sleep(2);
      }
    }
  } finally {
    await child.stop();
  }
}

async function breakdown(
  env: Record<string, string>,
  args: string[] = [],
): Promise<[string, number][]> {
  await Deno.mkdir(env.DATA_DIR, { recursive: true });
  const child = new Child("cold breakdown", [
    "run",
    "--config",
    CONFIG,
    "--allow-all",
    `${ROOT}/bench/lib/cold-breakdown.ts`,
    ...args,
  ], {
    env: childEnv(env),
    cwd: env.DATA_DIR,
  });
  const status = await child.status;
  await child.stop();
  const line = child.lines.find((l) => l.startsWith("COLD_JSON "));
  if (!status.success || !line) throw new Error(`cold-start breakdown failed:\n${child.tail()}`);
  return JSON.parse(line.slice("COLD_JSON ".length));
}

export async function coldStart(ctx: BenchContext): Promise<Section> {
  const section = newSection("cold", "5. Cold start", ctx.commandFor("cold"));
  const reps = ctx.quick ? 3 : 7;
  const root = await Deno.makeTempDir({ prefix: "bench-cold-" });
  const embeddedEnv = (name: string) => ({
    ...simulatorEnv(ctx.sim),
    DATA_DIR: `${root}/${name}`,
    ALLOW_ANONYMOUS: "true",
    SWEEPER_SECRET,
    SIGNING_SECRET: "bench-signing-secret",
  });
  const medians = new Map<string, number>();
  const samples = new Map<string, number[]>();
  let copies = 0;
  // A database closed cleanly (by bench/lib/cold-breakdown.ts), copied afresh before each start:
  // every start opens the same clean, up-to-date database, as a restarted instance would.
  const template = `${root}/template`;
  const freshCopy = async (): Promise<string> => {
    const dir = `${root}/copy-${copies++}`;
    const cp = await new Deno.Command("cp", { args: ["-a", template, dir] }).output();
    if (!cp.success) {
      throw new Error(`cannot copy the template database: ${new TextDecoder().decode(cp.stderr)}`);
    }
    return dir;
  };
  const envFor = async (entry: Entry) => ({
    ...embeddedEnv("unused"),
    DATA_DIR: entry.path.startsWith("bench/") ? `${root}/bare` : await freshCopy(),
  });
  try {
    await breakdown(embeddedEnv("template")); // creates and migrates the template, closes it cleanly; warms the cache
    // Warm the module cache once per entry; then interleave the entries rep by rep, so a noisy
    // moment on the shared machine hits all of them alike.
    for (const entry of ENTRIES) await startOnce(entry, await envFor(entry));
    for (let rep = 0; rep < reps; rep++) {
      for (const entry of ENTRIES) {
        const t = await startOnce(entry, await envFor(entry));
        samples.set(entry.name, [...(samples.get(entry.name) ?? []), t]);
        if (!entry.path.startsWith("bench/")) {
          await Deno.remove(`${root}/copy-${copies - 1}`, { recursive: true }).catch(() => {});
        }
      }
    }
    for (const [name, values] of samples) medians.set(name, median(values));
    const bare = medians.get("bare Hono app")!;
    /** A start-up figure against the 2× target. */
    const targetRow = (metric: string, value: number) =>
      section.rows.push({
        metric,
        value: ms(value),
        baseline: `${ms(bare)} (bare Hono app)`,
        ratio: ratio(value / bare),
        target: "≤ 2×",
        result: verdict(value <= 2 * bare),
      });
    for (const entry of ENTRIES.slice(1)) {
      targetRow(`${entry.path}: start → first answer (median of ${reps}, embedded store)`, medians.get(entry.name)!);
    }

    ctx.log("5. restarts after an unclean stop");
    const unclean: number[] = [];
    const reused = { ...embeddedEnv("unused"), DATA_DIR: await freshCopy() };
    for (let i = 0; i < (ctx.quick ? 2 : 4); i++) unclean.push(await startOnce(ENTRIES[1], reused));
    section.rows.push({
      metric:
        "functions/images/index.ts: restart after a SIGTERM-killed run on the same DATA_DIR (PGlite recovers)",
      value: ms(median(unclean.slice(1))),
      baseline: `${ms(bare)} (bare Hono app)`,
      ratio: ratio(median(unclean.slice(1)) / bare),
      target: "—",
      result: "info",
    });

    ctx.log("5. first start on an empty DATA_DIR");
    const firstStarts: number[] = [];
    for (let i = 0; i < (ctx.quick ? 1 : 3); i++) {
      firstStarts.push(await startOnce(ENTRIES[1], embeddedEnv(`images-fresh-${i}`)));
    }
    section.rows.push({
      metric:
        "functions/images/index.ts: first start on an empty DATA_DIR (PGlite creates its database)",
      value: ms(median(firstStarts)),
      baseline: `${ms(bare)} (bare Hono app)`,
      ratio: ratio(median(firstStarts) / bare),
      target: "—",
      result: "info",
    });

    // The deployed configurations: a direct PostgreSQL store, and Supabase (supabase-js through
    // the PostgREST/Storage stand-in of tests/support, backed by the same PostgreSQL database).
    const measureVariant = async (label: string, env: (name: string) => Record<string, string>) => {
      const variantSamples = new Map<string, number[]>();
      for (const entry of ENTRIES.slice(1)) await startOnce(entry, env(entry.name)); // applies the migrations once
      for (let rep = 0; rep < (ctx.quick ? 2 : 5); rep++) {
        for (const entry of ENTRIES.slice(1)) {
          variantSamples.set(entry.name, [...(variantSamples.get(entry.name) ?? []), await startOnce(entry, env(entry.name))]);
        }
      }
      for (const entry of ENTRIES.slice(1)) {
        targetRow(`${entry.path}: start → first answer, ${label}`, median(variantSamples.get(entry.name)!));
      }
    };
    ctx.log("5. on PostgreSQL and on Supabase");
    try {
      const cluster = await ctx.postgres();
      const db = await createTestDatabase(cluster);
      try {
        await measureVariant("PostgreSQL store (DATABASE_URL)", (name) => ({ ...embeddedEnv(name), DATABASE_URL: db.url }));
        const standin = await startSupabaseStandin({ databaseUrl: db.url, serviceKey: "bench-service-key" });
        try {
          await measureVariant("Supabase store (supabase-js; PostgREST/Storage stand-in)", (name) => ({
            ...embeddedEnv(name),
            SUPABASE_URL: standin.url,
            SUPABASE_SECRET_KEY: standin.serviceKey,
          }));
        } finally {
          await standin.close();
        }
      } finally {
        await db.drop().catch(() => {});
      }
    } catch (error) {
      section.notes.push(`PostgreSQL / Supabase cold starts not measured: ${(error as Error).message}`);
    }

    ctx.log("5. breakdown of the images function's start");
    const runs: [string, number][][] = [];
    const storeRuns: [string, number][][] = [];
    for (let i = 0; i < (ctx.quick ? 1 : 3); i++) {
      runs.push(await breakdown(embeddedEnv("template")));
      // buildServices()' two big parts, cold: in a fresh process of their own, on a fresh copy.
      storeRuns.push(
        await breakdown({ ...embeddedEnv("unused"), DATA_DIR: await freshCopy() }, [
          "--store-only",
        ]),
      );
    }
    const measured = runs; // the template's creation above warmed the cache for this script
    const stepRows = (rs: [string, number][][], prefix = "") =>
      rs[0].map(([name], i) => [prefix + name, ms(median(rs.map((r) => r[i][1])))]);
    section.tables.push({
      title:
        `Where the images function's start goes (embedded store, existing DATA_DIR; median of ${measured.length} runs of bench/lib/cold-breakdown.ts; imports are incremental; the "…of which" rows come from separate fresh processes, bench/lib/cold-breakdown.ts --store-only)`,
      header: ["Step", "ms"],
      rows: [
        ...stepRows(measured),
        ...stepRows(storeRuns, "…of which (fresh process) ").filter(([name]) =>
          name.includes("openPglite") || name.includes("applyMigrations")
        ),
      ],
    });
    section.tables.push({
      title: "Every start (ms)",
      header: ["Entry", "Samples"],
      rows: [...samples].map((
        [name, values],
      ) => [name, values.map((v) => v.toFixed(0)).join(", ")]),
    });
    section.raw = {
      samples: Object.fromEntries(samples),
      firstStarts,
      unclean,
      breakdown: runs,
      storeBreakdown: storeRuns,
    };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  section.notes.push(
    "Measured from just before spawning `deno run` (the same Deno binary, --config deno.json, module cache warm) to the end of the first answer's body; the client retries the connection every 2 ms.",
    "Each start is a fresh process on a fresh copy of a cleanly closed, migrated database (copying is not timed). The function entry points have no shutdown hook: a process stopped with SIGTERM leaves PGlite's database unclean, and the next start on it recovers first (the 'unclean stop' row).",
  );
  return section;
}
