/**
 * Runs the BFL API simulator (tests/support/bfl-simulator.ts) as a standalone process, e.g. to
 * point a locally running backend at it with BFL_API_URL=<apiUrl>.
 *
 *   deno run -A scripts/bfl-simulator.ts [--port 8787] [--ready-after-ms 2000] [--key sim-key]
 *                                        [--sample-ttl-ms 600000] [--image-size 64]
 *
 * Prints one JSON line {"apiUrl","pollOrigin","deliveryOrigin","key"} to stdout, then serves
 * until SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { startBflSimulator } from "../tests/support/bfl-simulator.ts";

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got "${value}"`);
    Deno.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    "ready-after-ms": { type: "string" },
    "sample-ttl-ms": { type: "string" },
    "image-size": { type: "string" },
    key: { type: "string" },
  },
});

const sim = await startBflSimulator({
  port: numberOption("port", values.port),
  readyAfterMs: numberOption("ready-after-ms", values["ready-after-ms"]),
  sampleTtlMs: numberOption("sample-ttl-ms", values["sample-ttl-ms"]),
  imageSize: numberOption("image-size", values["image-size"]),
  key: values.key,
});

console.log(JSON.stringify({
  apiUrl: sim.apiUrl,
  pollOrigin: sim.pollOrigin,
  deliveryOrigin: sim.deliveryOrigin,
  key: sim.key,
}));

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await sim.close();
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
