/**
 * The service under test as a separate OS process: `deno run --allow-all scripts/start-local.ts`
 * with the pinned Deno (the binary running the soak), on a fixed loopback port, so it can be
 * SIGKILLed and restarted on the same DATA_DIR / DATABASE_URL.
 *
 * Its stdout is one JSON object a line (shared/log/logger.ts); every line of every incarnation is
 * appended to `logFile`, and the events the soak measures are counted as they stream by:
 * `job.image_stored` per job_id (one storage write of a result each), and every event by name.
 *
 * @module
 */

import { childEnv } from "./lib/procs.ts";

const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export interface ServerOptions {
  port: number;
  /** The server's settings (BFL_API_URL, DATA_DIR, DATABASE_URL, ...). */
  env: Record<string, string>;
  /** The working directory: a temporary one, since start-local reads `.env` from it and the
   *  repository's must not leak in. */
  cwd: string;
  /** Where the server's stdout and stderr lines go (appended, prefixed by incarnation). */
  logFile: string;
  /** How long a start may take before it is an error. */
  startTimeoutMs?: number;
}

export interface ServerEvent {
  incarnation: number;
  level: string;
  event: string;
  fields: Record<string, unknown>;
}

export interface ServerProcess {
  readonly url: string;
  /** How many times the process has been started. */
  readonly incarnations: number;
  readonly running: boolean;
  /** job_id → number of `job.image_stored` lines, over all incarnations. */
  readonly imageStored: Map<string, number>;
  /** event name → count, over all incarnations. */
  readonly events: Map<string, number>;
  /** The first warn/error lines that are not routine (for the report), at most 20. */
  readonly notableErrors: ServerEvent[];
  /** Spawns the process and waits until /images/health answers 200. */
  start(): Promise<void>;
  /** SIGKILL, then waits for the process to be gone (PGlite allows one process per data dir). */
  kill(): Promise<void>;
  /** SIGTERM (graceful shutdown), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Warnings the soak provokes on purpose (injected faults): not worth listing one by one. */
const ROUTINE_WARNINGS = new Set([
  "job.poll_failed",
  "job.download_failed",
  "job.transition_skipped",
  "config.anonymous_access",
]);

/** `promise`'s value, or undefined after `ms`; the timer never outlives the race. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: number | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => timer = setTimeout(resolve, ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Server processes alive right now, for killLiveServers(). */
const live = new Set<Deno.ChildProcess>();

/** SIGKILLs every server process this module started and has not reaped (for an interrupted run). */
export function killLiveServers(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** A free loopback port (probe and release; the server binds it right after). */
export function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered) onLine(buffered);
}

export function createServerProcess(options: ServerOptions): ServerProcess {
  const url = `http://127.0.0.1:${options.port}`;
  const imageStored = new Map<string, number>();
  const events = new Map<string, number>();
  const notableErrors: ServerEvent[] = [];
  const encoder = new TextEncoder();
  let incarnations = 0;
  let child: Deno.ChildProcess | undefined;
  let pumps: Promise<unknown> = Promise.resolve();
  let exited: Promise<Deno.CommandStatus> | undefined;
  let log: Deno.FsFile | undefined;
  let logWrites: Promise<unknown> = Promise.resolve();
  const stderrTail: string[] = [];

  const writeLog = (line: string) => {
    const file = log;
    if (!file) return;
    logWrites = logWrites.then(() => file.write(encoder.encode(`${line}\n`))).catch(() => {});
  };

  const onLine = (incarnation: number, stream: "out" | "err") => (line: string) => {
    writeLog(`#${incarnation} ${stream} ${line}`);
    if (stream === "err") {
      stderrTail.push(line);
      if (stderrTail.length > 30) stderrTail.shift();
    }
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      return; // Deno's own messages (warnings, panics) are in the log file
    }
    const event = String(record.event ?? "");
    events.set(event, (events.get(event) ?? 0) + 1);
    if (event === "job.image_stored" && typeof record.job_id === "string") {
      imageStored.set(record.job_id, (imageStored.get(record.job_id) ?? 0) + 1);
    }
    const level = String(record.level ?? "");
    if (
      (level === "error" || level === "warn") && !ROUTINE_WARNINGS.has(event) &&
      notableErrors.length < 20
    ) {
      const { time: _time, level: _level, event: _event, ...fields } = record;
      notableErrors.push({ incarnation, level, event, fields });
    }
  };

  async function waitHealthy(): Promise<void> {
    const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
    while (Date.now() < deadline) {
      if (await within(exited!, 100)) break;
      try {
        const response = await fetch(`${url}/images/health`);
        await response.body?.cancel();
        if (response.ok) return;
      } catch {
        // not listening yet
      }
    }
    const status = await within(exited!, 0);
    throw new Error(
      `The server did not become healthy on ${url} (${
        status ? `exited with ${status.code}` : "timed out"
      }):\n` +
        stderrTail.join("\n"),
    );
  }

  async function reap(): Promise<void> {
    await exited;
    await pumps;
    child = undefined;
  }

  return {
    url,
    get incarnations() {
      return incarnations;
    },
    get running() {
      return child !== undefined;
    },
    imageStored,
    events,
    notableErrors,
    async start() {
      if (child) throw new Error("The server is already running");
      log ??= await Deno.open(options.logFile, { create: true, append: true });
      const incarnation = ++incarnations;
      // SIGKILL restarts must not lose the job.image_stored lines the duplicate-upload check counts.
      const env = childEnv({ ...options.env, PORT: String(options.port), LOG_UNBATCHED: "true" });
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          `--config=${REPO_ROOT}/deno.json`,
          `${REPO_ROOT}/scripts/start-local.ts`,
        ],
        cwd: options.cwd,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const spawned = child;
      live.add(spawned);
      exited = spawned.status.finally(() => live.delete(spawned));
      pumps = Promise.all([
        pumpLines(child.stdout, onLine(incarnation, "out")),
        pumpLines(child.stderr, onLine(incarnation, "err")),
      ]).catch(() => {});
      try {
        await waitHealthy();
      } catch (error) {
        await this.kill();
        throw error;
      }
    },
    async kill() {
      if (!child) return;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await reap();
    },
    async stop(graceMs = 15_000) {
      if (child) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
        const done = await within(exited!, graceMs);
        if (!done) await this.kill();
        else await reap();
      }
      await logWrites;
      log?.close();
      log = undefined;
    },
  };
}
