/**
 * Runs an entry point whose `Deno.serve(handler)` would listen on the default port 8000 on a port
 * of our choosing (BENCH_PORT) on 127.0.0.1 instead, so cold starts can be measured while other
 * servers run. Every entry point measured (the bare app included) goes through this same
 * wrapper, so its cost — one extra module — is in every figure alike.
 *
 *   BENCH_PORT=9001 deno run -A bench/lib/serve-entry.ts functions/images/index.ts
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const port = Number(Deno.env.get("BENCH_PORT"));
const entry = Deno.args[0];
if (!Number.isInteger(port) || port <= 0 || !entry) {
  console.error("usage: BENCH_PORT=<port> deno run -A bench/lib/serve-entry.ts <entry.ts>");
  Deno.exit(2);
}

const realServe = Deno.serve;
// deno-lint-ignore no-explicit-any
type AnyServe = (...args: any[]) => Deno.HttpServer;
const serveOnPort: AnyServe = (first: unknown, second?: unknown) => {
  const handler = typeof first === "function" ? first : second;
  const options = typeof first === "object" && first !== null ? first : {};
  return realServe(
    { ...options, port, hostname: "127.0.0.1", onListen() {} } as Deno.ServeTcpOptions,
    handler as Deno.ServeHandler,
  );
};
Object.defineProperty(Deno, "serve", { value: serveOnPort, configurable: true, writable: true });

await import(pathToFileURL(resolve(entry)).href);
