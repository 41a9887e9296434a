/**
 * The `sweeper` function: pg_cron calls it every few seconds (through pg_net) to advance due jobs.
 * It is authenticated by a shared secret, not by a user, answers 202 at once (pg_net waits only
 * seconds) and sweeps in the background, within the Edge Runtime's limits.
 *
 * @module
 */
import { Hono } from "hono";
import { hasBearerSecret } from "../auth/bearer-secret.ts";
import { ApiError } from "../http/api-error.ts";
import { useCommonHandlers } from "../http/use-common-handlers.ts";
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
  useCommonHandlers(app, services.log);
  app.post("/sweeper", (c) => {
    const secret = services.config.sweeperSecret;
    if (!secret) throw new ApiError(503, "sweeper_not_configured", "Cannot sweep: SWEEPER_SECRET is not set on the server");
    if (!hasBearerSecret(c.req.header("authorization"), secret)) {
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
