/**
 * Structured logs: one JSON object a line. Callers pass fields, never request bodies, keys or
 * tokens; `redact` is a last line of defence for values that look like secrets or base64 images.
 *
 * @module
 */
import { createBatchedStdout } from "./batched-stdout.ts";
import { requestContext } from "./request-context.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. a request id). */
  child(fields: LogFields): Logger;
}

const SECRET_KEYS = /key|token|secret|authorization|password|input_image/i;

/** A JSON.stringify replacer, so a line is redacted in the same single pass that serialises it. */
function redact(key: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  if (SECRET_KEYS.test(key)) return "[redacted]";
  // Credentials inside URLs (postgres://user:password@host) never reach a log line.
  const text = value.includes("@") ? value.replace(/\/\/[^/\s@]+@/g, "//[redacted]@") : value;
  return text.length > 512 ? `${text.slice(0, 64)}…[${text.length} chars]` : text;
}

/** Whether a record can skip the replacer: flat, and no string redact would change (the usual line). */
function needsNoRedaction(record: LogFields): boolean {
  for (const key in record) {
    const value = record[key];
    if (typeof value === "string") {
      if (value.length > 512 || value.includes("@") || SECRET_KEYS.test(key)) return false;
    } else if (value !== null && typeof value === "object" && !(value instanceof Date)) {
      return false;
    }
  }
  return true;
}

// Lines within the same millisecond share one timestamp string (toISOString was ~0.5 µs a line).
let lastMs = 0;
let lastIso = "";
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

export interface LoggerOptions {
  /** Where lines go; defaults to the console. */
  write?: (line: string, level: LogLevel) => void;
  minLevel?: LogLevel;
  fields?: LogFields;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let processWrite: ((line: string, level: LogLevel) => void) | undefined;
// Looked up once: in Deno 2.1 every lookup of `console` as a global costs a stack walk.
const cons = globalThis.console;

function envFlag(name: string): boolean {
  try {
    return Deno.env.get(name) === "true";
  } catch {
    return false; // no env permission: the default
  }
}

/**
 * The console on the Edge Runtime (what Supabase collects) or with LOG_UNBATCHED=true (every line
 * written before the next one is made: what a harness that kills the process needs), batched
 * stdout elsewhere; one per process.
 */
function defaultWrite(): (line: string, level: LogLevel) => void {
  if ("EdgeRuntime" in globalThis || envFlag("LOG_UNBATCHED")) {
    return (line, level) => (level === "error" || level === "warn" ? cons.error(line) : cons.log(line));
  }
  return (processWrite ??= createBatchedStdout());
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? defaultWrite();
  const min = ORDER[options.minLevel ?? "info"];
  const base = options.fields ?? {};
  const log = (level: LogLevel, event: string, fields: LogFields = {}) => {
    if (ORDER[level] < min) return;
    const record = { time: isoNow(), level, event, ...requestContext.getStore(), ...base, ...fields };
    write(JSON.stringify(record, needsNoRedaction(record) ? undefined : redact), level);
  };
  return {
    log,
    info: (event, fields) => log("info", event, fields),
    warn: (event, fields) => log("warn", event, fields),
    error: (event, fields) => log("error", event, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** A logger that keeps lines in memory, for tests that assert what was (not) logged. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ write: (line) => lines.push(line), minLevel: "debug" }), { lines });
}
