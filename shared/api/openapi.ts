/**
 * Registers the API's routes in the OpenAPI registry, from the same zod schemas that validate
 * requests (see job-schemas.ts), so /images/openapi.json cannot drift from the code.
 *
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import {
  CreateJobRequest,
  CreateJobResponse,
  ErrorResponse,
  JobIdParam,
  JobView,
  ListJobsQuery,
  LineageResponse,
  ListJobsResponse,
} from "./job-schemas.ts";

const error = (description: string) => ({ description, content: { "application/json": { schema: ErrorResponse } } });

// deno-lint-ignore no-explicit-any
export function registerOpenApi(app: OpenAPIHono<any>): void {
  const registry = app.openAPIRegistry;
  registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "A Supabase Auth access token (not needed on a local server with anonymous access).",
  });
  const security = [{ bearerAuth: [] }];

  registry.registerPath({
    method: "post",
    path: "/images/jobs",
    summary: "Create an image job",
    description:
      "Validates the request, stores input images, records the job and submits it to BFL when a provider slot is free. " +
      "Follow the returned url until status is succeeded, failed or moderated.",
    security,
    request: {
      headers: z.object({
        "idempotency-key": z.string().max(255).optional().openapi({
          description: "Repeat a request safely: the same key and body return the same job.",
        }),
      }),
      body: {
        required: true,
        content: { "application/json": { schema: CreateJobRequest }, "multipart/form-data": { schema: CreateJobRequest } },
      },
    },
    responses: {
      202: { description: "Accepted", content: { "application/json": { schema: CreateJobResponse } } },
      400: error("Invalid input; details name the fields"),
      401: error("Missing or invalid credentials"),
      413: error("Body or image too large"),
      415: error("Not a supported body type or image format"),
      422: error("BFL rejected the parameters; details name the fields"),
      429: error("Too many jobs; see Retry-After"),
      503: error("The provider is not configured"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/images/jobs",
    summary: "List your jobs, newest first",
    security,
    request: { query: ListJobsQuery },
    responses: {
      200: { description: "A page of jobs", content: { "application/json": { schema: ListJobsResponse } } },
      400: error("Invalid query"),
      401: error("Missing or invalid credentials"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/images/jobs/{id}",
    summary: "Read a job (refreshed from BFL when due)",
    security,
    request: { params: JobIdParam },
    responses: {
      200: { description: "The job", content: { "application/json": { schema: JobView } } },
      401: error("Missing or invalid credentials"),
      404: error("No such job for this user"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/images/jobs/{id}/lineage",
    summary: "The chain of edits that led to a job, oldest first",
    security,
    request: { params: JobIdParam },
    responses: {
      200: { description: "The chain", content: { "application/json": { schema: LineageResponse } } },
      401: error("Missing or invalid credentials"),
      404: error("No such job for this user"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/images/health",
    summary: "Liveness and configuration summary",
    responses: {
      200: {
        description: "OK",
        content: { "application/json": { schema: z.object({ status: z.literal("ok"), provider_configured: z.boolean() }).passthrough() } },
      },
    },
  });
}
