/**
 * The baseline for the request-overhead and cold-start figures: a bare Hono app on Deno that
 * answers a constant JSON, with nothing of the service loaded. The constant is a job view of the
 * same shape and size as GET /images/jobs/:id returns, so both put the same bytes on the wire and
 * the ratio isolates the service's own work (routing, auth, database read, signing the image URL).
 *
 *   PORT=8080 deno run --allow-net --allow-env bench/bare-hono.ts
 *
 * POST /upload reads a multipart body completely and answers the constant too: the baseline for
 * the large-upload figure (the cost of receiving the bytes at all).
 *
 * @module
 */
import { bareApp } from "./lib/bare-app.ts";

Deno.serve(
  { port: Number(Deno.env.get("PORT") ?? 8000), hostname: "127.0.0.1", onListen() {} },
  bareApp.fetch,
);
