/**
 * A focused soak scenario (found while building bench/soak.ts): a sweep batch outlives its lease
 * when BFL is slow, and a job is then advanced by two workers at once, so its result is downloaded
 * and stored twice.
 *
 *   ./scripts/deno.sh run --allow-all bench/soak-lease-expiry.ts     # ~90 s; exits 1 if it happens
 *
 * The server runs as a separate process (embedded store) with SWEEP_INTERVAL_MS=5000, so one sweep
 * pass claims all 24 running jobs at once (one 60 s lease for the whole batch) and advances them
 * 8 at a time. BFL's polls hang (the client times out after 30 s), so the third round of the batch
 * starts when the batch's leases have just expired; BFL then answers again, slowly (20 s). A client
 * reading its jobs claims those expired jobs too (GET /images/jobs/:id refreshes a due job), and
 * both workers poll, see Ready, download and store the same result.
 *
 * @module
 */
import { startBflSimulator } from "../tests/support/bfl-simulator.ts";
import { createServerProcess, freeLoopbackPort } from "./soak-server.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sim = await startBflSimulator();
const dir = await Deno.makeTempDir({ prefix: "soak-lease-expiry-" });
const server = createServerProcess({
  port: freeLoopbackPort(),
  cwd: dir,
  logFile: `${dir}/server.log`,
  env: {
    BFL_API_KEY: sim.key,
    BFL_API_URL: sim.apiUrl,
    BFL_ALPHA_API_URL: sim.apiUrl,
    BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
    DATA_DIR: `${dir}/data`,
    ALLOW_ANONYMOUS: "true",
    MAX_ACTIVE_JOBS_PER_USER: "0",
    POLL_INTERVAL_MS: "200",
    SWEEP_INTERVAL_MS: "5000",
  },
});
const started = Date.now();
const say = (message: string) =>
  console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${message}`);
try {
  await server.start();
  const ids: string[] = [];
  for (let i = 0; i < 24; i++) {
    const response = await fetch(`${server.url}/images/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: `lease ${i} [sim:ready-after=100]` }),
    });
    ids.push((await response.json()).id);
  }
  sim.faults.pollDelayMs = 40_000;
  say("24 jobs running at BFL (Ready after 0.1 s); BFL's polls now hang");
  while (sim.counts.polls === 0) await sleep(5);
  const claimedAt = Date.now();
  say("the sweeper claimed its batch (first poll arrived)");
  await sleep(claimedAt + 55_000 - Date.now());
  sim.faults.pollDelayMs = 20_000;
  say("BFL answers polls again, after 20 s");
  await sleep(claimedAt + 61_000 - Date.now());
  say("the client reads each unfinished job every second");
  const done = new Set<string>();
  const reads: Promise<void>[] = [];
  while (done.size < ids.length && Date.now() - started < 300_000) {
    for (const id of ids.filter((id) => !done.has(id))) {
      reads.push(
        fetch(`${server.url}/images/jobs/${id}`).then(async (response) => {
          const job = await response.json();
          if (["succeeded", "failed", "moderated"].includes(job.status)) done.add(id);
        }).catch(() => {}),
      );
    }
    await sleep(1000);
  }
  await Promise.all(reads);
  say(`${done.size}/${ids.length} jobs terminal`);
} finally {
  await server.stop();
  await sim.close();
}
const twice = [...server.imageStored.entries()].filter(([, writes]) => writes > 1);
const downloads = sim.submissions.map((submission) => sim.task(submission.id)?.downloads ?? 0);
console.log(
  `\njob.image_stored lines: ${
    [...server.imageStored.values()].reduce((a, b) => a + b, 0)
  } for ${server.imageStored.size} jobs; ` +
    `jobs stored more than once: ${twice.length}; result downloads per task: ${
      downloads.join(",")
    }; ` +
    `job.transition_skipped: ${server.events.get("job.transition_skipped") ?? 0}`,
);
console.log(
  `${
    twice.length === 0 ? "PASS" : "FAIL"
  }  0 duplicate uploads (${twice.length})   server log: ${dir}/server.log`,
);
if (twice.length === 0) await Deno.remove(dir, { recursive: true });
Deno.exit(twice.length === 0 ? 0 : 1);
