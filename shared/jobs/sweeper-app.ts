/**
 * The `sweeper` function: pg_cron calls it every few seconds (through pg_net) to advance due jobs.
 * It is authenticated by a shared secret, not by a user, answers 202 at once (pg_net waits only
 * seconds) and sweeps in the background, within the Edge Runtime's limits.
 *
 * @module
 */
import { Hono } from "hono";
import { constantTimeEqual } from "../auth/constant-time-equal.ts";
import { ApiError } from "../http/api-error.ts";
import { createErrorHandler, notFoundHandler } from "../http/error-handler.ts";
import { requestLogging } from "../http/request-logging.ts";
import type { Services } from "../wiring/build-services.ts";
import { type Background, runtimeBackground } from "./background.ts";
import { sweep, type SweepOptions } from "./sweep.ts";

export interface SweeperAppOptions {
  services: Services;
  background?: Background;
  sweep?: SweepOptions;
}

export function createSweeperApp(options: SweeperAppOptions): Hono {
  const { services } = options;
  const background = options.background ?? runtimeBackground();
  const app = new Hono();
  app.onError(createErrorHandler({ log: (message, fields) => services.log.error("http.unhandled_error", { message, ...fields }) }));
  app.notFound(notFoundHandler);
  app.use("*", requestLogging({ log: services.log }));
  app.post("/sweeper", (c) => {
    const secret = services.config.sweeperSecret;
    if (!secret) throw new ApiError(503, "sweeper_not_configured", "Cannot sweep: SWEEPER_SECRET is not set on the server");
    const presented = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
    if (!presented || !constantTimeEqual(presented, secret)) {
      throw new ApiError(401, "invalid_sweeper_secret", "Cannot sweep: the sweeper secret is missing or wrong");
    }
    const started = Date.now();
    background(
      sweep(services.runner, { limit: 25, concurrency: 4, ...options.sweep }).then((report) =>
        services.log.info("sweep.done", { ...report, ms: Date.now() - started })
      ),
    );
    return c.json({ accepted: true }, 202);
  });
  return app;
}

export const sweeperAppFor = (services: Services) => createSweeperApp({ services });
