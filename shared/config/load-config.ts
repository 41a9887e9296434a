/**
 * All settings, read once at start-up from the environment (and a `.env` file for local use).
 * Nothing else reads `Deno.env`, so tests build a Config directly.
 *
 * @module
 */
import type { JSONWebKeySet } from "jose";
import { readDotenv } from "./read-dotenv.ts";

export type StoreKind = "embedded" | "postgres" | "supabase";

export interface Config {
  /** BFL key; undefined → job creation answers 503 naming BFL_API_KEY. */
  bflApiKey?: string;
  /** Base URL for flux-kontext-pro/max. */
  bflApiUrl: string;
  /** Base URL for flux-bagel-alpha (its documented host is api.us1.bfl.ai). */
  bflAlphaApiUrl: string;
  /** Extra origins (besides https://*.bfl.ai) that polling and result URLs may point at. */
  bflTrustedOrigins: string[];
  store: StoreKind;
  dataDir: string;
  databaseUrl?: string;
  supabaseUrl?: string;
  supabaseSecretKey?: string;
  port: number;
  /** Upper bound for a whole request body. */
  maxBodyBytes: number;
  /** How often an unfinished job is polled when nothing else prompts it (BFL's loop: 1.5 s). */
  pollIntervalMs: number;
  /** With webhooks on, how often a job is polled anyway in case its webhook is lost. */
  webhookPollIntervalMs: number;
  /** Ask BFL for webhooks (needs publicBaseUrl, which BFL must be able to reach). */
  webhooks: boolean;
  /** Per-user limits (0: none): unfinished jobs at once, and jobs per 24 hours. */
  maxActiveJobsPerUser: number;
  maxJobsPerDay: number;
  /** A job not finished this long after submission fails with `timed_out`. */
  jobTimeoutMs: number;
  /** How often the local server's background loop sweeps due jobs. */
  sweepIntervalMs: number;
  /** Who the caller is when anonymous access was explicitly enabled (ALLOW_ANONYMOUS, local use). */
  anonymousUserId?: string;
  /** Verifying end users' Supabase access tokens. */
  auth: { jwks?: JSONWebKeySet; jwksUrl?: string; jwtSecret?: string; issuer?: string; serverKeys: string[] };
  /** Shared secret pg_cron sends to the sweeper function. */
  sweeperSecret?: string;
  /** Bearer secret for /images/metrics (defaults to the sweeper's). */
  metricsSecret?: string;
  /** Where the functions are reachable from outside (links in responses), e.g. https://<ref>.supabase.co/functions/v1. */
  publicBaseUrl?: string;
  /** Browser origins allowed by CORS; undefined = any. */
  corsOrigins?: string[];
  /** Storage bucket for inputs and results on Supabase. */
  bucket: string;
  /** Settings that are present but unusable: the function answers 503 naming them. */
  problems: string[];
  /** Secret for the local storage's signed download URLs. */
  signingSecret?: string;
}

export const LOCAL_USER_ID = "00000000-0000-4000-8000-000000000000";
const MIB = 1024 * 1024;

function intSetting(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`Cannot read setting ${name}: "${raw}" is not a non-negative integer`);
  }
  return value;
}

/** The Edge Runtime injects SUPABASE_SECRET_KEYS as JSON: {"default": "sb_secret_..."}. */
function secretKeyFromJson(json: string | undefined): string | undefined {
  if (!json) return undefined;
  try {
    const keys = JSON.parse(json);
    return typeof keys?.default === "string" ? keys.default : undefined;
  } catch {
    return undefined;
  }
}

/** Builds a Config from an environment map (pure; see loadConfig for the real environment). */
export function configFromEnv(env: Record<string, string | undefined>): Config {
  const supabaseUrl = env.SUPABASE_URL || undefined;
  const databaseUrl = env.DATABASE_URL || undefined;
  const store: StoreKind = supabaseUrl ? "supabase" : databaseUrl ? "postgres" : "embedded";
  const bflApiUrl = (env.BFL_API_URL || "https://api.bfl.ai").replace(/\/+$/, "");
  const problems: string[] = [];
  const supabaseSecretKey = env.SUPABASE_SECRET_KEY || secretKeyFromJson(env.SUPABASE_SECRET_KEYS) ||
    env.SUPABASE_SERVICE_ROLE_KEY || undefined;
  if (supabaseUrl && !supabaseSecretKey) {
    problems.push("SUPABASE_URL is set but no secret key is: set SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY)");
  }
  let jwks: JSONWebKeySet | undefined;
  if (env.SUPABASE_JWKS) {
    try {
      jwks = JSON.parse(env.SUPABASE_JWKS);
      if (!Array.isArray(jwks?.keys)) throw new Error("no keys array");
    } catch {
      problems.push("SUPABASE_JWKS is not a JSON Web Key Set");
      jwks = undefined;
    }
  }
  const allowAnonymous = env.ALLOW_ANONYMOUS === "true";
  return {
    bflApiKey: env.BFL_API_KEY || undefined,
    bflApiUrl,
    // An explicit BFL_API_URL (a proxy, the simulator) serves every model unless told otherwise.
    bflAlphaApiUrl: (env.BFL_ALPHA_API_URL || (env.BFL_API_URL ? bflApiUrl : "https://api.us1.bfl.ai"))
      .replace(/\/+$/, ""),
    bflTrustedOrigins: (env.BFL_TRUSTED_ORIGINS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    store,
    dataDir: env.DATA_DIR || ".data",
    databaseUrl,
    supabaseUrl,
    supabaseSecretKey,
    port: intSetting(env, "PORT", 8000),
    maxBodyBytes: intSetting(env, "MAX_BODY_BYTES", 64 * MIB),
    pollIntervalMs: intSetting(env, "POLL_INTERVAL_MS", 1500),
    jobTimeoutMs: intSetting(env, "JOB_TIMEOUT_MS", 15 * 60_000),
    maxActiveJobsPerUser: intSetting(env, "MAX_ACTIVE_JOBS_PER_USER", 20),
    maxJobsPerDay: intSetting(env, "MAX_JOBS_PER_DAY", 500),
    webhookPollIntervalMs: intSetting(env, "WEBHOOK_POLL_INTERVAL_MS", 60_000),
    webhooks: env.WEBHOOKS !== "false" && Boolean(env.PUBLIC_BASE_URL || supabaseUrl),
    sweepIntervalMs: intSetting(env, "SWEEP_INTERVAL_MS", 500),
    anonymousUserId: allowAnonymous ? (env.LOCAL_USER_ID || LOCAL_USER_ID) : undefined,
    auth: {
      jwks,
      jwksUrl: !jwks && supabaseUrl ? `${supabaseUrl}/auth/v1/.well-known/jwks.json` : undefined,
      jwtSecret: env.SUPABASE_JWT_SECRET || undefined,
      issuer: supabaseUrl ? `${supabaseUrl}/auth/v1` : undefined,
      serverKeys: [...(env.SERVER_API_KEYS ?? "").split(","), supabaseSecretKey ?? ""].map((s) => s.trim()).filter(Boolean),
    },
    sweeperSecret: env.SWEEPER_SECRET || undefined,
    metricsSecret: env.METRICS_SECRET || env.SWEEPER_SECRET || undefined,
    publicBaseUrl: (env.PUBLIC_BASE_URL || (supabaseUrl ? `${supabaseUrl}/functions/v1` : "")).replace(/\/+$/, "") || undefined,
    bucket: env.STORAGE_BUCKET || "images",
    corsOrigins: env.CORS_ORIGINS ? env.CORS_ORIGINS.split(",").map((o) => o.trim()).filter(Boolean) : undefined,
    problems,
    signingSecret: env.SIGNING_SECRET || undefined,
  };
}

/** Reads the process environment, falling back to `.env` for unset variables. */
export async function loadConfig(dotenvPath = ".env"): Promise<Config> {
  const fromFile = await readDotenv(dotenvPath);
  return configFromEnv({ ...fromFile, ...Deno.env.toObject() });
}
