/**
 * Where PGlite's start-up time goes on an existing data dir: runs bench/lib/pglite-open-probe.ts
 * in fresh processes (each on a fresh copy of a cleanly closed, migrated database), interleaving
 * the modes, and prints the median of each stage per mode.
 *
 *   deno run -A bench/lib/pglite-open-breakdown.ts <template pgdata dir> [reps=7] [modes=default,precomp,...]
 *
 * @module
 */
const template = Deno.args[0];
const reps = Number(Deno.args[1] ?? 7);
const modes = (Deno.args[2] ?? "default,sb16,early,hook,parts").split(",");
const ROOT = new URL("../../", import.meta.url).pathname;
const probe = `${ROOT}bench/lib/pglite-open-probe.ts`;
const tmp = await Deno.makeTempDir({ prefix: "pglite-open-" });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function once(mode: string, i: number) {
  const dir = `${tmp}/${mode}-${i}`;
  const cp = await new Deno.Command("cp", { args: ["-a", template, dir] }).output();
  if (!cp.success) throw new Error("cp failed");
  const start = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, probe, dir, mode],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = performance.now() - start;
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("PROBE_JSON "));
  if (!out.success || !line) {
    throw new Error(`probe ${mode} failed: ${text}\n${new TextDecoder().decode(out.stderr)}`);
  }
  await Deno.remove(dir, { recursive: true });
  return { ...JSON.parse(line.slice(11)), "process wall time (spawn → exit)": wall };
}

const results = new Map<string, Record<string, number>[]>();
for (const mode of modes) await once(mode, -1); // warm caches
for (let i = 0; i < reps; i++) {
  for (const mode of modes) {
    results.set(mode, [...(results.get(mode) ?? []), await once(mode, i)]);
  }
}
for (const [mode, runs] of results) {
  console.log(`\n== ${mode} (median of ${runs.length} fresh processes)`);
  for (const key of Object.keys(runs[0])) {
    const vals = runs.map((r) => r[key]).filter((v) => v !== undefined);
    console.log(
      `${median(vals).toFixed(1).padStart(8)} ms  ${key}   [${
        vals.map((v) => v.toFixed(0)).join(" ")
      }]`,
    );
  }
}
await Deno.remove(tmp, { recursive: true });
