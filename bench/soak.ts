/**
 * `deno task soak`: the fault-injection soak (see bench/soak-lib.ts).
 *
 *   ./scripts/deno.sh task soak                      # 1,000 jobs, 50 users, 2 restarts, PGlite then PostgreSQL
 *   ./scripts/deno.sh task soak --store embedded     # one store (embedded | postgres | both)
 *   ./scripts/deno.sh task soak --quick              # 60 jobs, 5 users, 1 restart (CI smoke)
 *   ./scripts/deno.sh task soak --json               # the reports as JSON on stdout (progress on stderr)
 *
 * Other options: --jobs N, --users N, --restarts N, --seed N, --deadline-min N, --keep (keep the
 * temporary folder with the data and server.log). Exits 1 when a target fails, 2 on bad options.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  formatDefinitions,
  formatReport,
  runSoak,
  soakOptions,
  type SoakReport,
  type StoreKind,
} from "./soak-lib.ts";
import { killLiveServers } from "./soak-server.ts";

const USAGE =
  "usage: deno task soak [--store embedded|postgres|both] [--jobs N] [--users N] [--restarts N] " +
  "[--seed N] [--deadline-min N] [--quick] [--json] [--keep]";

function positiveInt(name: string, raw: string | undefined, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${name} must be an integer >= ${min}, got "${raw}"\n${USAGE}`);
    Deno.exit(2);
  }
  return value;
}

let args;
try {
  args = parseArgs({
    args: Deno.args,
    options: {
      store: { type: "string", default: "both" },
      jobs: { type: "string" },
      users: { type: "string" },
      restarts: { type: "string" },
      seed: { type: "string" },
      "deadline-min": { type: "string" },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  }).values;
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
if (args.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const stores: StoreKind[] = args.store === "both"
  ? ["embedded", "postgres"]
  : [args.store as StoreKind];
if (!["embedded", "postgres", "both"].includes(args.store!)) {
  console.error(`--store must be embedded, postgres or both, got "${args.store}"\n${USAGE}`);
  Deno.exit(2);
}

// Ctrl-C: no server process may outlive the soak (the PostgreSQL cluster stops itself at unload).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    killLiveServers();
    Deno.exit(130);
  });
}

// With --json, stdout carries only the JSON document.
const out = args.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
const reports: SoakReport[] = [];
for (const store of stores) {
  const options = soakOptions(store, args.quick);
  options.jobs = positiveInt("jobs", args.jobs) ?? options.jobs;
  options.users = positiveInt("users", args.users) ?? options.users;
  options.restarts = positiveInt("restarts", args.restarts, 0) ?? options.restarts;
  options.seed = positiveInt("seed", args.seed, 0) ?? options.seed;
  options.deadlineMs =
    (positiveInt("deadline-min", args["deadline-min"]) ?? options.deadlineMs / 60_000) * 60_000;
  options.keep = args.keep;
  options.progress = (line) => console.error(line);
  const report = await runSoak(options);
  reports.push(report);
  out(`\n${formatReport(report)}\n`);
}
out(formatDefinitions());
const pass = reports.every((report) => report.pass);
out(
  `\nsoak: ${pass ? "PASS" : "FAIL"} (${
    reports.map((r) => `${r.store} ${r.pass ? "PASS" : "FAIL"}`).join(", ")
  })`,
);
if (args.json) console.log(JSON.stringify({ pass, reports }, null, 2));
Deno.exit(pass ? 0 : 1);
