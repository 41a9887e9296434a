/**
 * What every benchmark section gets: the mode, the BFL simulator (hosted in the benchmark's own
 * process), a lazily started throwaway PostgreSQL 15, and helpers to drive the server over HTTP.
 *
 * @module
 */
import type { BflSimulator } from "../../tests/support/bfl-simulator.ts";
import {
  type PostgresCluster,
  startPostgresCluster,
} from "../../tests/support/postgres-cluster.ts";
import { sleep } from "./stats.ts";

export interface BenchContext {
  quick: boolean;
  sim: BflSimulator;
  /** The throwaway PostgreSQL cluster, started on first use. */
  postgres(): Promise<PostgresCluster>;
  /** The command that runs one section alone. */
  commandFor(section: string): string;
  log(message: string): void;
}

export function createPostgresGetter(): { get(): Promise<PostgresCluster>; stop(): Promise<void> } {
  let cluster: Promise<PostgresCluster> | undefined;
  return {
    get() {
      cluster ??= startPostgresCluster();
      return cluster;
    },
    async stop() {
      if (cluster) await (await cluster.catch(() => undefined))?.stop();
    },
  };
}

/** The server's settings for talking to the simulator (as README's "demo" section describes). */
export function simulatorEnv(sim: BflSimulator): Record<string, string> {
  return {
    BFL_API_KEY: sim.key,
    BFL_API_URL: sim.apiUrl,
    BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
  };
}

/** The server configuration: anonymous local mode, no per-user limits. */
export function serverEnv(
  sim: BflSimulator,
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    ...simulatorEnv(sim),
    ALLOW_ANONYMOUS: "true",
    MAX_ACTIVE_JOBS_PER_USER: "0",
    MAX_JOBS_PER_DAY: "0",
    SIGNING_SECRET: "bench-signing-secret",
    ...extra,
  };
}

export interface JobAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * POST /images/jobs with a JSON body. The benchmarks ask for PNG results: the simulator makes a
 * JPEG result with jpeg-js (about 15 ms of pure JavaScript per image, in the benchmark process),
 * a PNG with zlib (well under a millisecond), so the provider's download time does not swamp
 * the service's own.
 */
export async function createJob(origin: string, body: Record<string, unknown>): Promise<JobAnswer> {
  const response = await fetch(`${origin}/images/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

export async function getJob(origin: string, id: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${origin}/images/jobs/${id}`);
  const body = await response.json();
  if (response.status !== 200) {
    throw new Error(`GET job ${id} answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

export const FINISHED = ["succeeded", "failed", "moderated"];

/** Creates a job that is Ready at once and follows it (GET refreshes it) until it is finished. */
export async function createFinishedJob(
  origin: string,
  prompt = "bench: read target [sim:ready-after=0]",
): Promise<string> {
  const created = await createJob(origin, { prompt, output_format: "png" });
  if (created.status !== 202) {
    throw new Error(`Cannot create a job: ${created.status} ${JSON.stringify(created.body)}`);
  }
  const id = created.body.id as string;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const job = await getJob(origin, id);
    if (job.status === "succeeded") return id;
    if (FINISHED.includes(job.status as string)) {
      throw new Error(`The setup job ended ${job.status}: ${JSON.stringify(job.error)}`);
    }
    await sleep(200);
  }
  throw new Error(`The setup job ${id} did not finish within 30 s`);
}
