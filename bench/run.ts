/**
 * The performance benchmarks of issue #5: `./scripts/deno.sh task bench [--quick]`.
 *
 * Each figure is measured as a ratio against a baseline taken in the same run, on this machine:
 *
 *   1. request overhead (status read, job creation) vs a bare Hono app   bench/lib/overhead.ts
 *   2. a 20 MB upload: time and peak RSS; base64 codecs compared          bench/lib/large-inputs.ts
 *   3. provider polls per job, with and without webhooks                 bench/lib/provider-calls.ts
 *   4. Ready → stored with 200 jobs in flight                           bench/lib/ready-to-stored.ts
 *   5. cold start of each Edge Function entry point vs the bare app       bench/lib/cold-start.ts
 *   6. sweeper throughput on PostgreSQL, 1,000 → 100,000 rows            bench/lib/sweeper.ts
 *
 * Options: --quick (small scale, a few minutes; what CI runs), --only=overhead,large,... (some
 * figures), --out=FILE (default: bench/RESULTS.md for a full run of every figure, otherwise
 * bench/out/RESULTS-<mode>.md), --strict (exit 1 when a target is missed, not only on errors).
 * --wait-quiet=MINUTES waits (at most that long, then at most 3 minutes before each figure) until
 * other processes use less than a quarter of a core, when other work shares the machine. Raw numbers go to bench/out/results-<mode>.json.
 *
 * Needs wrk (installed with apt-get when missing and running as root) and PostgreSQL 15's server
 * binaries (as the tests do: scripts/test.sh installs them).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startBflSimulator } from "../tests/support/bfl-simulator.ts";
import { type BenchContext, createPostgresGetter } from "./lib/context.ts";
import {
  cpuSnapshot,
  describeMachine,
  machineInfo,
  otherCores,
  waitForQuiet,
} from "./lib/machine.ts";
import { codeVersion } from "./lib/code-version.ts";
import { ROOT, stopAllChildren } from "./lib/procs.ts";
import { extractAnalysis, newSection, renderResults, type Section } from "./lib/report.ts";
import { ensureWrk } from "./lib/wrk.ts";
import { requestOverhead } from "./lib/overhead.ts";
import { largeInputs } from "./lib/large-inputs.ts";
import { providerCalls } from "./lib/provider-calls.ts";
import { readyToStored } from "./lib/ready-to-stored.ts";
import { coldStart } from "./lib/cold-start.ts";
import { sweeperThroughput } from "./lib/sweeper.ts";

const SECTIONS: [string, string, (ctx: BenchContext) => Promise<Section>][] = [
  ["overhead", "1. Request overhead", requestOverhead],
  ["large", "2. Large inputs", largeInputs],
  ["polls", "3. Provider calls per job", providerCalls],
  ["ready", "4. Ready → stored under load", readyToStored],
  ["cold", "5. Cold start", coldStart],
  ["sweeper", "6. Sweeper throughput", sweeperThroughput],
];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    strict: { type: "boolean", default: false },
    "wait-quiet": { type: "string" },
  },
});
const quick = values.quick!;
const only = values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
for (const name of only ?? []) {
  if (!SECTIONS.some(([id]) => id === name)) {
    console.error(`Unknown figure "${name}"; choose from ${SECTIONS.map(([id]) => id).join(", ")}`);
    Deno.exit(2);
  }
}
const selected = SECTIONS.filter(([id]) => !only || only.includes(id));
const mode = quick ? "quick" : "full";
const complete = selected.length === SECTIONS.length;
const outFile = values.out ??
  (complete && !quick
    ? `${ROOT}/bench/RESULTS.md`
    : `${ROOT}/bench/out/RESULTS-${mode}${complete ? "" : "-partial"}.md`);
const command = `./scripts/deno.sh task bench${quick ? " --quick" : ""}${
  only ? ` --only=${only.join(",")}` : ""
}`;

let t0 = performance.now();
const log = (message: string) =>
  console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${message}`);

const waitQuietMs = values["wait-quiet"] !== undefined
  ? Number(values["wait-quiet"] || 10) * 60_000
  : 0;
if (waitQuietMs > 0) {
  await waitForQuiet(waitQuietMs, log);
  t0 = performance.now();
}
const code = await codeVersion();
const machine = await machineInfo();
log(`${describeMachine(machine)}; Deno ${machine.deno}; load average ${machine.loadavg.join(" ")}`);
await ensureWrk();

const sim = await startBflSimulator({ readyAfterMs: 0 });
const postgres = createPostgresGetter();
const ctx: BenchContext = {
  quick,
  sim,
  postgres: postgres.get,
  commandFor: (id) => `./scripts/deno.sh task bench${quick ? " --quick" : ""} --only=${id}`,
  log,
};

// Ctrl-C or SIGTERM: stop the servers, the simulator and PostgreSQL before leaving.
const interrupted = async () => {
  log("interrupted: stopping child processes");
  await stopAllChildren();
  await sim.close();
  await postgres.stop();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", interrupted);
Deno.addSignalListener("SIGTERM", interrupted);

const sections: Section[] = [];
try {
  for (const [id, title, run] of selected) {
    // Between figures, wait (at most 3 minutes) for other work on the machine to pass.
    if (waitQuietMs > 0) await waitForQuiet(Math.min(waitQuietMs, 180_000), log);
    log(`${title} ...`);
    const cpuBefore = await cpuSnapshot();
    const started = performance.now();
    let section: Section;
    try {
      section = await run(ctx);
    } catch (error) {
      section = newSection(id, title, ctx.commandFor(id));
      section.error = (error as Error).stack ?? String(error);
      log(`${title} failed: ${section.error}`);
      await stopAllChildren();
    }
    section.seconds = (performance.now() - started) / 1000;
    section.otherCores = otherCores(cpuBefore, await cpuSnapshot());
    sections.push(section);
    for (const row of section.rows) {
      log(
        `  ${
          row.result.padEnd(4)
        } ${row.metric}: ${row.value} vs ${row.baseline} = ${row.ratio} (target ${row.target})`,
      );
    }
  }
} finally {
  await stopAllChildren();
  await sim.close();
  await postgres.stop();
}

const wallSeconds = (performance.now() - t0) / 1000;
let previous = "";
try {
  previous = await Deno.readTextFile(outFile);
} catch {
  // first run
}
const markdown = renderResults(
  {
    date: new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"),
    denoVersion: machine.deno,
    v8Version: machine.v8,
    machine: describeMachine(machine),
    loadavg: machine.loadavg.map((n) => n.toFixed(2)).join(" "),
    command,
    quick,
    wallSeconds,
    code,
    loadGenerator: "wrk 4.1 (Debian package; separate process, 1 thread) — see bench/lib/wrk.ts",
  },
  sections,
  extractAnalysis(previous),
);
await Deno.mkdir(`${ROOT}/bench/out`, { recursive: true });
await Deno.mkdir(outFile.slice(0, outFile.lastIndexOf("/")), { recursive: true });
await Deno.writeTextFile(outFile, markdown);
await Deno.writeTextFile(
  `${ROOT}/bench/out/results-${mode}.json`,
  JSON.stringify({ machine, command, wallSeconds, sections }, null, 2),
);
log(`wrote ${outFile} (${wallSeconds.toFixed(0)} s in all)`);

const errors = sections.filter((s) => s.error).length;
const missed = sections.flatMap((s) => s.rows).filter((r) => r.result === "FAIL").length;
log(`${missed} targets missed, ${errors} figures failed to run`);
Deno.exit(errors > 0 || (values.strict && missed > 0) ? 1 : 0);
