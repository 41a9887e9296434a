/**
 * The `bfl-webhook` function: BFL POSTs here when a task finishes. It cannot send a Supabase JWT,
 * so each job has its own random secret, which BFL echoes in X-Webhook-Secret. The call is only a
 * hint: the job is then advanced exactly like a poll (fetching the result from BFL's polling URL),
 * never from a URL in the body, so a forged or replayed call can at most cause one extra poll.
 * Duplicates and calls for finished or unknown jobs answer 200 and change nothing.
 *
 * @module
 */
import { Hono } from "hono";
import { constantTimeEqual } from "../auth/constant-time-equal.ts";
import { ApiError } from "../http/api-error.ts";
import { useCommonHandlers } from "../http/use-common-handlers.ts";
import type { Services } from "../wiring/build-services.ts";
import { ACTIVE_STATUSES } from "./job-row.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createWebhookApp(services: Services): Hono {
  const app = new Hono();
  useCommonHandlers(app, services.log);
  app.post("/bfl-webhook/jobs/:id", async (c) => {
    const id = c.req.param("id");
    await c.req.raw.body?.cancel(); // the body is not trusted for anything
    const job = UUID.test(id) ? await services.store.get(id) : null;
    const secret = c.req.header("x-webhook-secret") ?? "";
    if (!job || !ACTIVE_STATUSES.includes(job.status)) {
      // Unknown or finished: acknowledge so BFL stops retrying; nothing changes.
      return c.json({ received: true, changed: false });
    }
    if (!job.webhook_secret || !secret || !constantTimeEqual(secret, job.webhook_secret)) {
      throw new ApiError(401, "invalid_webhook_secret", "The webhook secret is missing or wrong");
    }
    const after = await services.jobs.advance(job, false);
    services.log.info("webhook.received", { job_id: job.id, from: job.status, to: after.status });
    return c.json({ received: true, changed: after.status !== job.status });
  });
  return app;
}

export const webhookAppFor = (services: Services) => createWebhookApp(services);
