/**
 * Shared start-up for the Edge Function entry points: load the config, build the services, and
 * fall back to a 503 app naming the problem when that fails. Each entry point passes the function
 * that builds its own app, so it imports only what it needs.
 *
 * @module
 */
import type { Hono } from "hono";
import { type Config, loadConfig } from "../config/load-config.ts";
import { createMisconfiguredApp } from "../http/misconfigured-app.ts";
import { createLogger } from "../log/logger.ts";
import { buildServices, ConfigError, type Services } from "./build-services.ts";

// deno-lint-ignore no-explicit-any
export type AppFactory = (services: Services) => Hono<any> | { fetch: (request: Request) => Response | Promise<Response> };

/** Returns a fetch handler for Deno.serve. */
export async function startFunction(
  build: AppFactory,
  config?: Config,
): Promise<(request: Request) => Response | Promise<Response>> {
  const log = createLogger({ fields: { function: build.name || "function" } });
  try {
    const resolved = config ?? await loadConfig();
    const services = await buildServices(resolved, { log });
    const app = build(services);
    return (request) => app.fetch(request);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems : ["Start-up failed; see the function's logs"];
    log.error("startup.failed", { problems, error: error instanceof ConfigError ? undefined : (error as Error).message });
    return createMisconfiguredApp(problems).fetch;
  }
}
