/**
 * All settings, read once at start-up from the environment (and a `.env` file for local use).
 * Nothing else reads `Deno.env`, so tests build a Config directly.
 *
 * @module
 */
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
  /** A job not finished this long after submission fails with `timed_out`. */
  jobTimeoutMs: number;
  /** How often the local server's background loop sweeps due jobs. */
  sweepIntervalMs: number;
  /** Who the caller is when authentication is off (local use only). */
  anonymousUserId?: string;
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

/** Builds a Config from an environment map (pure; see loadConfig for the real environment). */
export function configFromEnv(env: Record<string, string | undefined>): Config {
  const supabaseUrl = env.SUPABASE_URL || undefined;
  const databaseUrl = env.DATABASE_URL || undefined;
  const store: StoreKind = supabaseUrl ? "supabase" : databaseUrl ? "postgres" : "embedded";
  const bflApiUrl = (env.BFL_API_URL || "https://api.bfl.ai").replace(/\/+$/, "");
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
    supabaseSecretKey: env.SUPABASE_SECRET_KEY || env.SUPABASE_SERVICE_ROLE_KEY || undefined,
    port: intSetting(env, "PORT", 8000),
    maxBodyBytes: intSetting(env, "MAX_BODY_BYTES", 64 * MIB),
    pollIntervalMs: intSetting(env, "POLL_INTERVAL_MS", 1500),
    jobTimeoutMs: intSetting(env, "JOB_TIMEOUT_MS", 15 * 60_000),
    sweepIntervalMs: intSetting(env, "SWEEP_INTERVAL_MS", 1000),
    anonymousUserId: store === "embedded" ? (env.LOCAL_USER_ID || LOCAL_USER_ID) : undefined,
    signingSecret: env.SIGNING_SECRET || undefined,
  };
}

/** Reads the process environment, falling back to `.env` for unset variables. */
export async function loadConfig(dotenvPath = ".env"): Promise<Config> {
  const fromFile = await readDotenv(dotenvPath);
  return configFromEnv({ ...fromFile, ...Deno.env.toObject() });
}
