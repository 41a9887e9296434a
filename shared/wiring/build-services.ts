/**
 * Builds the service's parts from a Config: the job store and image storage chosen by which
 * settings are present, the BFL client, and the job service. Entry points and tests call this;
 * tests swap only the edges (fetch, the BFL URL, the database).
 *
 * @module
 */
import { BflClient } from "../bfl/bfl-client.ts";
import type { Config } from "../config/load-config.ts";
import { JobService } from "../jobs/job-service.ts";
import type { RunnerDeps } from "../jobs/job-runner.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { applyMigrations } from "../store/apply-migrations.ts";
import type { JobStore } from "../store/job-store.ts";
import { openPglite } from "../store/pglite-client.ts";
import { openPostgres } from "../store/postgres-client.ts";
import type { SqlClient } from "../store/sql-client.ts";
import { SqlJobStore } from "../store/sql-job-store.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import { LocalImageStorage } from "../storage/local-image-storage.ts";
import { UrlSigner } from "../storage/url-signer.ts";

export interface Services {
  config: Config;
  store: JobStore;
  storage: ImageStorage;
  signer?: UrlSigner;
  bfl?: BflClient;
  jobs: JobService;
  runner: RunnerDeps;
  log: Logger;
  close(): Promise<void>;
}

export interface BuildOptions {
  log?: Logger;
  /** For tests: the fetch BFL calls go through. */
  fetch?: typeof fetch;
  /** For tests: an already-open SQL client (e.g. a throwaway PostgreSQL). */
  sql?: SqlClient;
  workerId?: string;
}

/** A local secret that survives restarts, so signed links stay valid. */
async function localSigningSecret(config: Config): Promise<string> {
  const file = `${config.dataDir}/signing-secret`;
  try {
    return (await Deno.readTextFile(file)).trim();
  } catch {
    await Deno.mkdir(config.dataDir, { recursive: true });
    const secret = crypto.randomUUID() + crypto.randomUUID();
    await Deno.writeTextFile(file, secret, { mode: 0o600 });
    return secret;
  }
}

export async function buildServices(config: Config, options: BuildOptions = {}): Promise<Services> {
  const log = options.log ?? createLogger();
  let sql: SqlClient;
  if (options.sql) {
    sql = options.sql;
  } else if (config.store === "embedded") {
    await Deno.mkdir(config.dataDir, { recursive: true });
    sql = await openPglite(`${config.dataDir}/pglite`);
  } else if (config.store === "postgres") {
    sql = openPostgres(config.databaseUrl!);
  } else {
    throw new Error("Cannot build the Supabase store: it is not available in this build");
  }
  await applyMigrations(sql);
  const store = new SqlJobStore(sql);

  const signer = new UrlSigner(config.signingSecret ?? await localSigningSecret(config));
  const storage = new LocalImageStorage(`${config.dataDir}/images`, signer);

  const bfl = config.bflApiKey
    ? new BflClient({
      apiKey: config.bflApiKey,
      apiUrl: config.bflApiUrl,
      alphaApiUrl: config.bflAlphaApiUrl,
      trustedOrigins: config.bflTrustedOrigins,
      fetch: options.fetch,
    })
    : undefined;

  const runner: RunnerDeps = {
    store,
    storage,
    bfl,
    log,
    workerId: options.workerId ?? `worker-${crypto.randomUUID().slice(0, 8)}`,
    leaseSeconds: 60,
    pollIntervalMs: config.pollIntervalMs,
    jobTimeoutMs: config.jobTimeoutMs,
  };
  return {
    config,
    store,
    storage,
    signer,
    bfl,
    jobs: new JobService(runner),
    runner,
    log,
    close: () => store.close(),
  };
}
