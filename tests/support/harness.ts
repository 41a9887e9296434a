/**
 * Starts the whole service for an end-to-end test: the BFL simulator (three loopback hosts), the
 * service built exactly as `deno task start` builds it, on an in-memory PGlite and a temporary
 * image folder, served over real HTTP on a random port.
 */
import { configFromEnv, type Config } from "../../shared/config/load-config.ts";
import { createLocalServer, type LocalServer } from "../../shared/local/create-local-server.ts";
import { createMemoryLogger } from "../../shared/log/logger.ts";
import { openPglite } from "../../shared/store/pglite-client.ts";
import type { SqlClient } from "../../shared/store/sql-client.ts";
import { buildServices, type Services } from "../../shared/wiring/build-services.ts";
import { type BflSimulator, type SimulatorOptions, startBflSimulator } from "./bfl-simulator.ts";

export interface Harness {
  sim: BflSimulator;
  services: Services;
  server: LocalServer;
  /** e.g. http://127.0.0.1:PORT/images */
  base: string;
  dataDir: string;
  logs: string[];
  sql: SqlClient;
  /** Files under the image folder, relative paths. */
  storedFiles(): Promise<string[]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  simulator?: SimulatorOptions;
  env?: Record<string, string>;
  /** Run the background sweeper loop (default false: tests drive progress through reads). */
  sweep?: boolean;
  /** Reuse a database (restart tests); default a fresh in-memory PGlite. */
  sql?: SqlClient;
  dataDir?: string;
  /** Reuse a running simulator. */
  sim?: BflSimulator;
}

async function listFiles(root: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) found.push(...await listFiles(root, path));
      else found.push(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

export function testConfig(sim: BflSimulator, dataDir: string, env: Record<string, string> = {}): Config {
  return configFromEnv({
    BFL_API_KEY: sim.key,
    BFL_API_URL: sim.apiUrl,
    BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
    DATA_DIR: dataDir,
    ALLOW_ANONYMOUS: "true",
    SIGNING_SECRET: "test-signing-secret",
    POLL_INTERVAL_MS: "100",
    SWEEP_INTERVAL_MS: "50",
    ...env,
  });
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const sim = options.sim ?? await startBflSimulator({ readyAfterMs: 200, ...options.simulator });
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "images-test-" });
  const sql = options.sql ?? await openPglite();
  const logger = createMemoryLogger();
  const services = await buildServices(testConfig(sim, dataDir, options.env), { sql, log: logger });
  const server = createLocalServer(services, { sweep: options.sweep ?? false });
  const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, server.app.fetch);
  const base = `http://127.0.0.1:${http.addr.port}/images`;
  return {
    sim,
    services,
    server,
    base,
    dataDir,
    logs: logger.lines,
    sql,
    storedFiles: () => listFiles(`${dataDir}/images`),
    async close() {
      await server.stop();
      await http.shutdown();
      if (!options.sql) await services.close();
      if (!options.sim) await sim.close();
      if (!options.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Polls GET url until the job is finished (or the deadline passes); returns the last body. */
export async function waitForJob(url: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const response = await fetch(url);
    const body = await response.json();
    if (["succeeded", "failed", "moderated"].includes(body.status) || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
