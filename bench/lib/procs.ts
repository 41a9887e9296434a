/**
 * Child processes for the benchmarks: the server under test (scripts/start-local.ts), the Edge
 * Function entry points, the bare Hono app. Each runs in its own process (its own isolate and
 * event loop, its RSS readable from /proc), started with the same Deno binary as the benchmark.
 *
 * Children get a clean environment (a developer's BFL_API_KEY, DATABASE_URL or SUPABASE_URL must
 * not change what is measured) and a temporary working directory (no stray .env file is read).
 *
 * @module
 */
import { sleep } from "./stats.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const DENO = Deno.execPath();
export const CONFIG = `${ROOT}/deno.json`;

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const PASS_THROUGH = [
  "PATH",
  "HOME",
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "TMPDIR",
  "DENO_TLS_CA_STORE",
  "LANG",
  "NPM_CONFIG_REGISTRY",
];

/** The permissions the service's processes run with (the local server, each function entry). */
export const SERVICE_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];

/** The variables a child needs to find Deno's cache, plus `extra`. */
export function childEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of PASS_THROUGH) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) if (value !== undefined) env[name] = value;
  return env;
}

type LineListener = (line: string, stream: "stdout" | "stderr") => void;

const running = new Set<Child>();

export class Child {
  readonly lines: string[] = [];
  readonly #listeners = new Set<LineListener>();
  readonly #process: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  readonly status: Promise<Deno.CommandStatus>;
  /** performance.now() just before spawn. */
  readonly spawnedAt: number;
  exited = false;

  constructor(
    readonly name: string,
    args: string[],
    options: { env: Record<string, string>; cwd?: string; keepLines?: boolean },
  ) {
    this.spawnedAt = performance.now();
    this.#process = new Deno.Command(DENO, {
      args,
      env: options.env,
      clearEnv: true,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    running.add(this);
    const keep = options.keepLines ?? true;
    this.#pumps = [
      this.#pump(this.#process.stdout, "stdout", keep),
      this.#pump(this.#process.stderr, "stderr", keep),
    ];
    this.status = this.#process.status.then((status) => {
      this.exited = true;
      running.delete(this);
      return status;
    });
  }

  get pid(): number {
    return this.#process.pid;
  }

  async #pump(
    stream: ReadableStream<Uint8Array>,
    name: "stdout" | "stderr",
    keep: boolean,
  ): Promise<void> {
    let pending = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        pending += chunk;
        let newline: number;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (keep) this.lines.push(line);
          for (const listener of this.#listeners) listener(line, name);
        }
      }
    } catch {
      // the process went away
    }
  }

  onLine(listener: LineListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the first line (already seen or future) that `match` accepts. */
  waitForLine(
    match: (line: string) => boolean,
    timeoutMs: number,
    what = "a line",
  ): Promise<string> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new Error(
            `${this.name}: no ${what} within ${timeoutMs} ms; last output:\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      const off = this.onLine((line) => {
        if (!match(line)) return;
        clearTimeout(timer);
        off();
        resolve(line);
      });
      this.status.then((status) => {
        clearTimeout(timer);
        off();
        reject(
          new Error(
            `${this.name} exited (code ${status.code}) before ${what}; last output:\n${this.tail()}`,
          ),
        );
      });
    });
  }

  tail(lines = 15): string {
    return this.lines.slice(-lines).join("\n");
  }

  /** SIGTERM, then SIGKILL after `graceMs`; waits for the exit and the output to drain. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.exited) {
      try {
        this.#process.kill("SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          this.#process.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, graceMs);
      await this.status;
      clearTimeout(timer);
    }
    await Promise.all(this.#pumps);
  }
}

/** Kills every child still running (on the way out after an error). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop(1000)));
}

/** Parses the service's one-JSON-object-a-line logs; other lines are skipped. */
export function parseLog(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

export interface ServerProcess {
  child: Child;
  port: number;
  /** e.g. http://127.0.0.1:PORT */
  origin: string;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts `deno task start`'s entry point (scripts/start-local.ts) in its own process on a free
 * port with `env` on top of a clean environment and waits until it listens.
 */
export async function startLocalServer(
  env: Record<string, string | undefined>,
  options: { port?: number; keepLines?: boolean; name?: string } = {},
): Promise<ServerProcess> {
  const port = options.port ?? freePort();
  const dataDir = await Deno.makeTempDir({ prefix: "bench-server-" });
  const child = new Child(options.name ?? "server", [
    "run",
    "--config",
    CONFIG,
    ...SERVICE_PERMISSIONS,
    `${ROOT}/scripts/start-local.ts`,
  ], {
    env: childEnv({ PORT: String(port), DATA_DIR: `${dataDir}/data`, ...env }),
    cwd: dataDir,
    keepLines: options.keepLines,
  });
  await child.waitForLine(
    (line) => line.includes('"server.listening"'),
    60_000,
    "server.listening log line",
  );
  const origin = `http://127.0.0.1:${port}`;
  return {
    child,
    port,
    origin,
    dataDir,
    async stop() {
      await child.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** VmRSS and VmHWM (peak RSS since start or since the last reset) of a process, in bytes. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s*(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, needs to own the process or be root). */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS every `everyMs` until stopped; returns the samples' maximum. */
export function sampleRss(pid: number, everyMs = 5): { stop(): Promise<number> } {
  let max = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        max = Math.max(max, (await memoryOf(pid)).rss);
      } catch {
        return;
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return max;
    },
  };
}

/** Fetches `url` until it answers (any HTTP status) or `timeoutMs` passes. */
export async function waitForHttp(
  url: string,
  timeoutMs = 30_000,
  init?: RequestInit,
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      return await fetch(url, init);
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(
          `${url} did not answer within ${timeoutMs} ms: ${(error as Error).message}`,
        );
      }
      await sleep(2);
    }
  }
}

/** bench/bare-hono.ts in its own process on a free port. */
export async function startBare(): Promise<{ child: Child; origin: string }> {
  const port = freePort();
  const child = new Child("bare-hono", [
    "run",
    "--config",
    CONFIG,
    "--allow-net",
    "--allow-env",
    `${ROOT}/bench/bare-hono.ts`,
  ], {
    env: childEnv({ PORT: String(port) }),
  });
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(`${origin}/`, 30_000);
  return { child, origin };
}
