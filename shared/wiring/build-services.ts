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
import type { SqlClient } from "../store/sql-client.ts";
import { SqlJobStore } from "../store/sql-job-store.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import { LocalImageStorage } from "../storage/local-image-storage.ts";
import { UrlSigner } from "../storage/url-signer.ts";
import { Metrics } from "../metrics/metrics.ts";
import { createAuthenticator } from "../auth/create-authenticator.ts";
import type { Authenticator } from "../http/authenticate.ts";

/** Settings that are present but unusable; the message names them and never their values. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Cannot start: ${problems.join("; ")}`);
    this.name = "ConfigError";
  }
}

export interface Services {
  config: Config;
  store: JobStore;
  storage: ImageStorage;
  signer?: UrlSigner;
  bfl?: BflClient;
  jobs: JobService;
  runner: RunnerDeps;
  metrics: Metrics;
  /** Resolves callers to user ids (tokens, server keys, or the anonymous local user). */
  authenticator: Authenticator;
  log: Logger;
  close(): Promise<void>;
}

export interface BuildOptions {
  log?: Logger;
  /** For tests: the fetch BFL calls go through. */
  fetch?: typeof fetch;
  /** For tests: the fetch supabase-js goes through (a PostgREST/Storage stand-in). */
  supabaseFetch?: typeof fetch;
  /** For tests: an already-open SQL client (e.g. a throwaway PostgreSQL). */
  sql?: SqlClient;
  workerId?: string;
}

/** 32 random bytes, hex: a per-job webhook secret BFL echoes back. */
function randomSecret(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
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
  if (config.problems.length > 0) throw new ConfigError(config.problems);
  let sql: SqlClient | undefined;
  if (options.sql) {
    sql = options.sql;
  } else if (config.store === "embedded") {
    await Deno.mkdir(config.dataDir, { recursive: true });
    // Drivers are imported only when configured: a function starts faster without the others.
    const { openPglite } = await import("../store/pglite-client.ts");
    sql = await openPglite(`${config.dataDir}/pglite`);
  } else if (config.store === "postgres") {
    try {
      const { openPostgres } = await import("../store/postgres-client.ts");
      sql = openPostgres(config.databaseUrl!);
    } catch {
      // The driver's message would quote the URL, password included.
      throw new ConfigError(["Cannot use DATABASE_URL: it is not a valid postgres:// URL"]);
    }
  }
  let store: JobStore;
  let storage: ImageStorage;
  let signer: UrlSigner | undefined;
  if (config.store === "supabase" && !options.sql) {
    // Supabase applies the migrations itself (supabase db push); rows and images go through its APIs.
    const [{ createAdminClient }, { SupabaseJobStore }, { SupabaseImageStorage }] = await Promise.all([
      import("../supabase/create-admin-client.ts"),
      import("../supabase/supabase-job-store.ts"),
      import("../supabase/supabase-image-storage.ts"),
    ]);
    const client = createAdminClient(config.supabaseUrl!, config.supabaseSecretKey!, options.supabaseFetch);
    store = new SupabaseJobStore(client);
    storage = new SupabaseImageStorage(client, config.bucket);
  } else {
    try {
      await applyMigrations(sql!);
    } catch (error) {
      if (config.store !== "postgres" || options.sql) throw error;
      await sql!.close().catch(() => {});
      // The driver's message (host, port, reason) without any credentials from the URL.
      const reason = String((error as Error).message).replace(/\/\/[^@\s/]*@/g, "//");
      throw new ConfigError([`Cannot use the database at DATABASE_URL: ${reason}`]);
    }
    store = new SqlJobStore(sql!);
    signer = new UrlSigner(config.signingSecret ?? await localSigningSecret(config));
    storage = new LocalImageStorage(`${config.dataDir}/images`, signer);
  }

  const metrics = new Metrics();
  const bfl = config.bflApiKey
    ? new BflClient({
      apiKey: config.bflApiKey,
      apiUrl: config.bflApiUrl,
      alphaApiUrl: config.bflAlphaApiUrl,
      trustedOrigins: config.bflTrustedOrigins,
      fetch: options.fetch,
      onCall: ({ operation, seconds, outcome }) => {
        metrics.observe("bfl_request_duration_seconds", "Time BFL took to answer", seconds, { operation });
        if (!["accepted", "status", "ok"].includes(outcome)) {
          metrics.increment("bfl_errors_total", "BFL calls that did not succeed, by outcome", { operation, outcome });
        }
      },
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
    webhookPollIntervalMs: config.webhookPollIntervalMs,
    webhookFor: config.webhooks && config.publicBaseUrl
      ? (job) => ({ url: `${config.publicBaseUrl}/bfl-webhook/jobs/${job.id}`, secret: randomSecret() })
      : undefined,
    jobTimeoutMs: config.jobTimeoutMs,
    metrics,
  };
  return {
    config,
    store,
    storage,
    signer,
    bfl,
    jobs: new JobService(runner, { maxActiveJobs: config.maxActiveJobsPerUser, maxJobsPerDay: config.maxJobsPerDay }),
    runner,
    metrics,
    authenticator: createAuthenticator({ ...config.auth, anonymousUserId: config.anonymousUserId }),
    log,
    close: async () => {
      await store.close();
    },
  };
}
