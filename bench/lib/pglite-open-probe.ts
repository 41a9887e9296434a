/**
 * Child process for bench/lib/pglite-open-breakdown.ts: opens PGlite on an existing data dir and
 * prints where the time goes, stage by stage, as one JSON line (`PROBE_JSON {...}`).
 *
 *   deno run -A bench/lib/pglite-open-probe.ts <pgdata dir> [mode]
 *
 * Modes:
 *   default   new PGlite(dir), as shared/store/pglite-client.ts did (PGlite loads its own files)
 *   sb16      default plus `-c shared_buffers=16MB`, as shared/store/pglite-client.ts now does
 *   client    openPglite(dir) from shared/store/pglite-client.ts, whatever it does now
 *   precomp   compile pglite.wasm ourselves (Deno.readFile + WebAssembly.compile), read
 *             pglite.data ourselves, pass them as pgliteWasmModule / fsBundle
 *   streaming like precomp but WebAssembly.compileStreaming(fetch(file://…))
 *   parts     only the loading parts, no PGlite: read wasm, compile, instantiate-less, read data
 *   early     start read + compile of pglite.wasm before importing PGlite, pass the module
 *   hook      like early, but PGlite's instantiateWasm waits for it (full overlap with its set-up)
 *
 * Env: PROBE_PARAMS="-c name=value ..." (extra start parameters), PROBE_MEM (initialMemory).
 *
 * The stages inside PGlite's #init are observed through hooks PGlite offers (a custom `fs` whose
 * init() wraps the Emscripten options; a wrapped instantiateWasm; preRun; _initArrayTypes).
 *
 * @module
 */
const t0 = performance.now();
const dir = Deno.args[0];
const mode = Deno.args[1] ?? "default";
const marks: Record<string, number> = { runtimeStart: t0 };
// Main-thread CPU time (ns, from /proc/<pid>/task/<pid>/schedstat): less sensitive than wall time
// to other processes on a shared machine. Each stage gets "cpu:<stage>" next to its wall time.
// Also "wait:<stage>": time the main thread was runnable but not running (run-queue wait, i.e.
// other processes had the cores), the second schedstat field.
const schedstat = () =>
  Deno.readTextFileSync(`/proc/${Deno.pid}/task/${Deno.pid}/schedstat`).split(" ");
const cpuMs = () => Number(schedstat()[0]) / 1e6;
const waitMs = () => Number(schedstat()[1]) / 1e6;

/** Prints the marks, CPU and wait times as one PROBE_JSON line. */
function printProbe(): void {
  const prefixed = (prefix: string, values: Record<string, number>) =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [`${prefix}:${k}`, v]));
  console.log(`PROBE_JSON ${JSON.stringify({ ...marks, ...prefixed("cpu", cpu), ...prefixed("wait", wait) })}`);
}
const wait: Record<string, number> = { runtimeStart: waitMs() };
let lastWait = waitMs();
const cpu: Record<string, number> = { runtimeStart: cpuMs() };
let last = performance.now();
let lastCpu = cpuMs();
const lap = (name: string) => {
  const now = performance.now();
  const c = cpuMs();
  marks[name] = (marks[name] ?? 0) + (now - last);
  cpu[name] = (cpu[name] ?? 0) + (c - lastCpu);
  const w = waitMs();
  wait[name] = (wait[name] ?? 0) + (w - lastWait);
  lastWait = w;
  last = now;
  lastCpu = c;
};
const dist = new URL(
  "./",
  import.meta.resolve("@electric-sql/pglite"),
);

if (mode === "parts") {
  const wasmBytes = await Deno.readFile(new URL("pglite.wasm", dist));
  lap("readFile pglite.wasm");
  const module = await WebAssembly.compile(wasmBytes);
  lap("WebAssembly.compile pglite.wasm");
  await Deno.readFile(new URL("pglite.data", dist));
  lap("readFile pglite.data");
  const resp = await fetch(new URL("pglite.wasm", dist));
  await WebAssembly.compileStreaming(resp);
  lap("compileStreaming(fetch(file:)) pglite.wasm (2nd compile)");
  WebAssembly.Module.imports(module);
  printProbe();
  Deno.exit(0);
}

if (mode === "client") {
  const { openPglite } = await import("../../shared/store/pglite-client.ts");
  lap("import pglite-client.ts");
  const sql = await openPglite(dir);
  lap("openPglite()");
  marks["= READY: process start → waitReady"] = performance.now();
  cpu["= READY: process start → waitReady"] = cpuMs();
  wait["= READY: process start → waitReady"] = waitMs();
  await sql.query("select 1");
  lap("first query");
  await sql.close();
  lap("close");
  printProbe();
  Deno.exit(0);
}

// early/hook: read + compile pglite.wasm from the very start, overlapping what follows.
const early = mode === "early" || mode === "hook"
  ? Deno.readFile(new URL("pglite.wasm", dist)).then((b) => WebAssembly.compile(b))
  : undefined;
const { PGlite } = await import("@electric-sql/pglite");
const { NodeFS } = await import("@electric-sql/pglite/nodefs");
lap("import @electric-sql/pglite (+nodefs)");

let wasmModule: WebAssembly.Module | undefined;
let fsBundle: Blob | undefined;
if (mode === "early") {
  wasmModule = await early;
  lap("(ours) await early compile");
}
if (mode === "precomp" || mode === "streaming") {
  const dataPromise = Deno.readFile(new URL("pglite.data", dist));
  if (mode === "precomp") {
    const bytes = await Deno.readFile(new URL("pglite.wasm", dist));
    lap("(ours) readFile pglite.wasm");
    wasmModule = await WebAssembly.compile(bytes);
    lap("(ours) WebAssembly.compile");
  } else {
    wasmModule = await WebAssembly.compileStreaming(fetch(new URL("pglite.wasm", dist)));
    lap("(ours) compileStreaming");
  }
  fsBundle = new Blob([await dataPromise]);
  lap("(ours) readFile pglite.data");
}

// Time WebAssembly.instantiate / compile calls made inside PGlite.
const origInstantiate = WebAssembly.instantiate;
// deno-lint-ignore no-explicit-any
(WebAssembly as any).instantiate = async (...args: any[]) => {
  const s = performance.now();
  // deno-lint-ignore no-explicit-any
  const r = await (origInstantiate as any)(...args);
  const kind = args[0] instanceof WebAssembly.Module ? "module" : "bytes";
  marks[`  WebAssembly.instantiate(${kind}) itself`] = performance.now() - s;
  return r;
};

class TimedNodeFS extends NodeFS {
  // deno-lint-ignore no-explicit-any
  override async init(pg: any, opts: any) {
    lap("new PGlite → fs.init (loadFs etc.)");
    const r = await super.init(pg, opts);
    const o = r.emscriptenOpts;
    const inst = o.instantiateWasm!;
    // deno-lint-ignore no-explicit-any
    o.instantiateWasm = (imports: any, cb: any) => {
      lap("fs.init → instantiateWasm called (fs bundle await, glue setup)");
      if (mode === "hook") {
        early!.then(async (m) => {
          const instance = await WebAssembly.instantiate(m, imports);
          lap("instantiateWasm (read + compile + instantiate)");
          cb(instance, m);
        });
        return {};
      }
      // deno-lint-ignore no-explicit-any
      return inst(imports, (instance: any, module: any) => {
        lap("instantiateWasm (read + compile + instantiate)");
        cb(instance, module);
      });
    };
    // deno-lint-ignore no-explicit-any
    o.preRun = [(_mod: any) => lap("instantiated → preRun start (memory init etc.)"), ...o.preRun!];
    return r;
  }
  override async initialSyncFs() {
    lap("preRun → FS ready (fs bundle unpack into MEMFS, mount, runtime init)");
    await super.initialSyncFs();
  }
}

const proto = Object.getPrototypeOf(PGlite.prototype);
const origInit = proto._initArrayTypes;
// deno-lint-ignore no-explicit-any
proto._initArrayTypes = async function (this: any, o: any) {
  if (!marks["postgres single-user start (callMain: startup, catalog, recovery check)"]) {
    lap("postgres single-user start (callMain: startup, catalog, recovery check)");
  }
  const r = await origInit.call(this, o);
  if (!marks["_initArrayTypes query"]) lap("_initArrayTypes query");
  return r;
};

const extraParams = mode === "sb16"
  ? ["-c", "shared_buffers=16MB"]
  : (Deno.env.get("PROBE_PARAMS") ?? "").split(" ").filter(Boolean);
const db = new PGlite({
  dataDir: dir,
  fs: new TimedNodeFS(dir),
  ...(wasmModule ? { pgliteWasmModule: wasmModule } : {}),
  ...(fsBundle ? { fsBundle } : {}),
  // PROBE_PARAMS="-c shared_buffers=16MB ..." appends to PGlite's default start parameters;
  // mode sb16 = default with what shared/store/pglite-client.ts now passes.
  ...(extraParams.length ? { startParams: [...PGlite.defaultStartParams, ...extraParams] } : {}),
  ...(Deno.env.get("PROBE_MEM") ? { initialMemory: Number(Deno.env.get("PROBE_MEM")) } : {}),
});
await db.waitReady;
lap("rest of waitReady");
marks["= READY: process start → waitReady"] = performance.now();
cpu["= READY: process start → waitReady"] = cpuMs();
await db.query("select 1");
lap("first query (select 1)");
await db.close();
lap("close");
marks["peak RSS (MB, VmHWM)"] =
  Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) / 1024;
console.log(
  `PROBE_JSON ${
    JSON.stringify({
      ...marks,
      ...Object.fromEntries(Object.entries(cpu).map(([k, v]) => [`cpu:${k}`, v])),
      ...Object.fromEntries(Object.entries(wait).map(([k, v]) => [`wait:${k}`, v])),
    })
  }`,
);
Deno.exit(0);
