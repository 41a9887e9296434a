/**
 * GET /images/metrics in Prometheus' text format, protected like the sweeper: a bearer secret
 * (METRICS_SECRET, or SWEEPER_SECRET), never a user's token.
 *
 * @module
 */
import type { Hono } from "hono";
import { hasBearerSecret } from "../auth/bearer-secret.ts";
import { ApiError } from "../http/api-error.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { JobStore } from "../store/job-store.ts";

export interface MetricsRouteOptions {
  metrics: Metrics;
  store: JobStore;
  secret?: string;
}

// deno-lint-ignore no-explicit-any
export function registerMetricsRoute(app: Hono<any>, options: MetricsRouteOptions): void {
  app.get("/images/metrics", async (c) => {
    if (!options.secret) {
      throw new ApiError(503, "metrics_not_configured", "Cannot serve metrics: METRICS_SECRET (or SWEEPER_SECRET) is not set");
    }
    if (!hasBearerSecret(c.req.header("authorization"), options.secret)) {
      throw new ApiError(401, "invalid_metrics_secret", "Cannot serve metrics: the bearer secret is missing or wrong");
    }
    const counts = await options.store.statusCounts();
    const body = options.metrics.render([{
      name: "image_jobs",
      help: "Jobs in the database by model and status",
      series: counts.map((row) => ({ labels: { model: row.model, status: row.status }, value: row.jobs })),
    }]);
    return c.text(body, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
}
