/**
 * A/B cold starts: the same measurement as figure 5 (bench/lib/cold-start.ts: spawn → first
 * answer, fresh copy of a cleanly closed, migrated DATA_DIR per start), for two source trees
 * interleaved start by start, so a busy shared machine slows both alike. Tree A is typically a
 * copy of the repo at HEAD, tree B the working tree.
 *
 *   deno run -A bench/lib/cold-ab.ts <tree A> <tree B> [reps=9]
 *
 * BFL is pointed at an unreachable loopback port: none of the measured first requests calls it.
 *
 * @module
 */
import { ENTRIES, type Entry, SWEEPER_SECRET } from "./cold-start.ts";
import { Child, childEnv, freePort, SERVICE_PERMISSIONS } from "./procs.ts";
import { median, sleep } from "./stats.ts";

const [treeA, treeB] = [Deno.args[0], Deno.args[1]];
const reps = Number(Deno.args[2] ?? 9);
const SECRET = SWEEPER_SECRET;
/** Entries with a database to open (all but the bare app). */
const usesDb = (entry: Entry) => !entry.path.startsWith("bench/");

const root = await Deno.makeTempDir({ prefix: "cold-ab-" });
const env = (dataDir: string) => ({
  BFL_API_KEY: "k",
  BFL_API_URL: "http://127.0.0.1:9/v1",
  BFL_TRUSTED_ORIGINS: "http://127.0.0.1:9",
  DATA_DIR: dataDir,
  ALLOW_ANONYMOUS: "true",
  SWEEPER_SECRET: SECRET,
  SIGNING_SECRET: "ab-signing-secret",
});

async function startOnce(tree: string, entry: Entry, dataDir: string): Promise<number> {
  const port = freePort();
  const origin = `http://127.0.0.1:${port}`;
  const child = new Child(`ab ${entry.name}`, [
    "run",
    "--config",
    `${tree}/deno.json`,
    ...SERVICE_PERMISSIONS,
    `${tree}/bench/lib/serve-entry.ts`,
    `${tree}/${entry.path}`,
  ], { env: childEnv({ ...env(dataDir), BENCH_PORT: String(port) }), cwd: dataDir });
  try {
    while (true) {
      if (child.exited) throw new Error(`${entry.name} exited:\n${child.tail()}`);
      if (performance.now() - child.spawnedAt > 60_000) throw new Error(`${entry.name}: no answer`);
      try {
        const response = await fetch(entry.request(origin));
        await response.text();
        const elapsed = performance.now() - child.spawnedAt;
        if (response.status !== entry.expect) throw new Error(`${entry.name}: ${response.status}`);
        return elapsed;
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        await sleep(2);
      }
    }
  } finally {
    await child.stop();
  }
}

// A template database, created and migrated by tree A's own code and closed cleanly.
const template = `${root}/template`;
await Deno.mkdir(template, { recursive: true });
{
  const child = new Child("ab template", [
    "run",
    "--config",
    `${treeA}/deno.json`,
    "--allow-all",
    `${treeA}/bench/lib/cold-breakdown.ts`,
  ], { env: childEnv(env(template)), cwd: template });
  const status = await child.status;
  await child.stop();
  if (!status.success) throw new Error(`template failed:\n${child.tail()}`);
}
let copies = 0;
const freshCopy = async () => {
  const dir = `${root}/copy-${copies++}`;
  const cp = await new Deno.Command("cp", { args: ["-a", template, dir] }).output();
  if (!cp.success) throw new Error("cp failed");
  return dir;
};

const samples = new Map<string, number[]>();
const runs: [string, string, Entry][] = [];
for (const entry of ENTRIES) {
  runs.push(["A", treeA, entry]);
  if (usesDb(entry)) runs.push(["B", treeB, entry]);
}
for (let rep = -1; rep < reps; rep++) { // rep -1 warms the module caches
  for (const [label, tree, entry] of runs) {
    const dir = usesDb(entry) ? await freshCopy() : `${root}/bare`;
    await Deno.mkdir(dir, { recursive: true });
    const t = await startOnce(tree, entry, dir);
    if (rep >= 0) {
      const key = usesDb(entry) ? `${entry.name} ${label}` : entry.name;
      samples.set(key, [...(samples.get(key) ?? []), t]);
    }
    if (usesDb(entry)) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
const bare = median(samples.get("bare")!);
console.log(`A = ${treeA}\nB = ${treeB}\nmedian of ${reps} starts each, interleaved`);
for (const [key, values] of samples) {
  const m = median(values);
  console.log(
    `${key.padEnd(14)} ${m.toFixed(0).padStart(6)} ms  ${(m / bare).toFixed(2)}×   [${
      values.map((v) => v.toFixed(0)).join(" ")
    }]`,
  );
}
await Deno.remove(root, { recursive: true }).catch(() => {});
