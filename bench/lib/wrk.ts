/**
 * The load generator: wrk (Debian's package), a C program with an event loop per thread, run
 * as a separate process. Chosen over autocannon (Node.js) because it costs far less CPU per
 * request: on 2 cores shared with the server, a heavier client would take cycles from the server
 * and cap the bare app's figure first, flattering every ratio against it.
 *
 * A Lua script prints one JSON line with wrk's own latency percentiles (microseconds) and, when
 * asked, counts responses whose body contains a marker (e.g. `"status":"queued"`).
 *
 * @module
 */

export interface WrkOptions {
  url: string;
  connections: number;
  durationS: number;
  threads?: number;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Count responses whose body contains this text (makes wrk read bodies; slightly slower). */
  countBodyContaining?: string;
  timeoutS?: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  matched: number;
  command: string;
}

let wrkPath: string | undefined;

async function which(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const info = await Deno.stat(`${dir}/${name}`);
      if (info.isFile) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const result = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  })
    .output();
  const decoder = new TextDecoder();
  return { code: result.code, out: decoder.decode(result.stdout) + decoder.decode(result.stderr) };
}

/** wrk's path; installs Debian's `wrk` with apt-get when it is missing and we are root. */
export async function ensureWrk(): Promise<string> {
  if (wrkPath) return wrkPath;
  let found = await which("wrk");
  if (!found) {
    if (Deno.uid() !== 0 || !(await which("apt-get"))) {
      throw new Error("wrk is not installed: install it (sudo apt-get install wrk) and run again");
    }
    console.error("Installing wrk with apt-get ...");
    let install = await run("apt-get", ["install", "-y", "-qq", "wrk"]);
    if (install.code !== 0) {
      await run("apt-get", ["update", "-qq"]);
      install = await run("apt-get", ["install", "-y", "-qq", "wrk"]);
    }
    if (install.code !== 0) throw new Error(`Cannot install wrk with apt-get:\n${install.out}`);
    found = await which("wrk");
    if (!found) throw new Error("apt-get installed wrk but it is not on PATH");
  }
  wrkPath = found;
  return found;
}

const luaString = (text: string) =>
  `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;

function luaScript(options: WrkOptions): string {
  const lines: string[] = [];
  lines.push(`wrk.method = ${luaString(options.method ?? "GET")}`);
  if (options.body !== undefined) lines.push(`wrk.body = ${luaString(options.body)}`);
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  lines.push(`
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  matched = 0
end`);
  if (options.countBodyContaining !== undefined) {
    lines.push(`
local marker = ${luaString(options.countBodyContaining)}
function response(status, headers, body)
  if body ~= nil and string.find(body, marker, 1, true) then
    matched = matched + 1
  end
end`);
  }
  lines.push(`
function done(summary, latency, requests)
  local m = 0
  for _, t in ipairs(threads) do
    m = m + (t:get("matched") or 0)
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"mean_us":%f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"matched":%d}\\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, m))
end`);
  return lines.join("\n");
}

/** Runs wrk once and parses its JSON line. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const wrk = await ensureWrk();
  const script = await Deno.makeTempFile({ prefix: "bench-wrk-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(script, luaScript(options));
    const args = [
      `-t${options.threads ?? 1}`,
      `-c${options.connections}`,
      `-d${options.durationS}s`,
      `--timeout`,
      `${options.timeoutS ?? 10}s`,
      "-s",
      script,
      options.url,
    ];
    const result = await new Deno.Command(wrk, { args, stdout: "piped", stderr: "piped" }).output();
    const out = new TextDecoder().decode(result.stdout);
    const line = out.split("\n").find((l) => l.startsWith("WRK_JSON "));
    if (result.code !== 0 || !line) {
      throw new Error(
        `wrk failed (code ${result.code}): ${out}${new TextDecoder().decode(result.stderr)}`,
      );
    }
    const j = JSON.parse(line.slice("WRK_JSON ".length));
    const durationS = j.duration_us / 1e6;
    return {
      requests: j.requests,
      durationS,
      rps: j.requests / durationS,
      latencyMs: {
        mean: j.mean_us / 1000,
        p50: j.p50_us / 1000,
        p90: j.p90_us / 1000,
        p99: j.p99_us / 1000,
        max: j.max_us / 1000,
      },
      errors: {
        connect: j.connect,
        read: j.read,
        write: j.write,
        status: j.status,
        timeout: j.timeout,
      },
      matched: j.matched,
      command: `wrk ${
        args.filter((a) => a !== script).map((a) => (a === "-s" ? "-s <script.lua>" : a)).join(" ")
      }`,
    };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

/** Total failed requests (socket errors and non-2xx/3xx answers). */
export const wrkFailures = (r: WrkResult) =>
  r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout;
