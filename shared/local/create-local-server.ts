/**
 * The local server: the `images` function's app, reachable both as Supabase delivers it
 * (/images/...) and as a deployed project's URL reads (/functions/v1/images/...), plus the
 * background loop that advances jobs nobody polls.
 *
 * @module
 */
import { Hono } from "hono";
import { imagesAppFor } from "../api/create-images-app.ts";
import type { Services } from "../wiring/build-services.ts";
import { startSweepLoop } from "../jobs/sweep.ts";
import { createWebhookApp } from "../jobs/webhook-app.ts";
import { notFoundHandler } from "../http/error-handler.ts";

export interface LocalServer {
  app: Hono;
  /** Stops the background loop (the HTTP server is the caller's). */
  stop(): Promise<void>;
}

export function createLocalServer(services: Services, options: { sweep?: boolean } = {}): LocalServer {
  const { config } = services;
  const images = imagesAppFor(services);
  const app = new Hono();
  app.notFound(notFoundHandler);
  const webhook = createWebhookApp(services);
  for (const prefix of ["/", "/functions/v1"]) {
    app.route(prefix, images);
    app.route(prefix, webhook);
  }
  app.get("/", (c) => c.redirect("/images/health"));
  const stopLoop = options.sweep === false ? async () => {} : startSweepLoop(services.runner, config.sweepIntervalMs);
  return { app, stop: stopLoop };
}
