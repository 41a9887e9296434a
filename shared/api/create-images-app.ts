/**
 * The public job API, the Supabase Edge Function named `images`. Supabase delivers requests to
 * a function as /<function-name>/..., so every route starts with /images.
 *
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError } from "../http/api-error.ts";
import { limitBody } from "../http/limit-body.ts";
import { FINISHED_STATUSES } from "../jobs/job-row.ts";
import { authenticate, type Authenticator, type AuthVariables } from "../http/authenticate.ts";
import { errorBody } from "../http/error-handler.ts";
import { useCommonHandlers } from "../http/use-common-handlers.ts";
import type { JobService } from "../jobs/job-service.ts";
import type { Logger } from "../log/logger.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import type { UrlSigner } from "../storage/url-signer.ts";
import { FinishedViewCache } from "./finished-view-cache.ts";
import { disposeImages, issuesFromZod, readCreateRequest } from "./read-create-request.ts";
import { JobIdParam, ListJobsQuery } from "./job-schemas.ts";
import { SignedUrlCache, toJobView } from "./job-view.ts";
import { registerOpenApi } from "./openapi.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { requestFingerprint } from "./request-fingerprint.ts";
import { resolveJobInputs } from "./resolve-job-inputs.ts";
import { registerMetricsRoute } from "./metrics-route.ts";
import { registerPlaygroundRoutes } from "../playground/register-playground.ts";
import { registerDocsRoute } from "./docs-page.ts";
import { cors } from "hono/cors";
import type { Metrics } from "../metrics/metrics.ts";
import type { Services } from "../wiring/build-services.ts";

export interface ImagesAppOptions {
  jobs: JobService;
  storage: ImageStorage;
  log: Logger;
  authenticator: Authenticator;
  /** Signs local download links; absent when Storage signs its own (Supabase). */
  signer?: UrlSigner;
  /** False when BFL_API_KEY is missing: creation answers 503, reads still work. */
  providerConfigured: boolean;
  maxBodyBytes: number;
  imageUrlTtlSeconds?: number;
  /** Where the API is reachable from outside, e.g. https://<ref>.supabase.co/functions/v1. */
  publicBaseUrl?: string;
  /** Extra facts for /images/health (store kind, ...). */
  health?: () => Promise<Record<string, unknown>>;
  /** Origins allowed to call from browsers (default any: auth is by bearer token, not cookies). */
  corsOrigins?: string | string[];
  /** Serves /images/metrics when given. */
  metrics?: { registry: Metrics; secret?: string };
}

type Env = { Variables: AuthVariables };

/** Idempotency-Key: optional; when sent, 1–255 characters (Stripe's bound). */
function readIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim().length === 0 || value.length > 255) {
    throw new ApiError(400, "invalid_idempotency_key", "Invalid Idempotency-Key: must be 1 to 255 characters", {
      details: [{ field: "Idempotency-Key", message: "Must be 1 to 255 characters" }],
    });
  }
  return value;
}

/** The API's own public base (…/images), from configuration or from the request. */
function apiBaseUrl(c: Context, publicBaseUrl?: string): string {
  if (publicBaseUrl) return `${publicBaseUrl.replace(/\/+$/, "")}/images`;
  // The request URL is already normalised: cut it as a string (a URL parse per read was measurable).
  const url = c.req.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const index = url.indexOf("/images", pathStart);
  return `${url.slice(0, index < 0 ? pathStart : index)}/images`;
}

export function createImagesApp(options: ImagesAppOptions): OpenAPIHono<Env> {
  const app = new OpenAPIHono<Env>();
  const ttl = options.imageUrlTtlSeconds ?? 3600;
  useCommonHandlers(app, options.log);
  // Browsers on other origins (web apps, supabase-js functions.invoke, the hosted playground).
  // Credentials are bearer tokens, never cookies, so any origin may call; CORS_ORIGINS narrows it.
  const corsMiddleware = cors({
    origin: options.corsOrigins ?? "*",
    allowHeaders: ["authorization", "content-type", "idempotency-key", "apikey", "x-client-info", "x-user-id", "x-request-id"],
    allowMethods: ["GET", "POST", "OPTIONS"],
    exposeHeaders: ["location", "idempotent-replayed", "retry-after", "x-request-id"],
    maxAge: 600,
  });
  // Only browsers send Origin; apps and servers skip CORS work (measured: ~14 µs a request).
  app.use("*", (c, next) => (c.req.header("origin") ? corsMiddleware(c, next) : next()));
  const urlCache = new SignedUrlCache();
  const finishedViews = new FinishedViewCache(ttl);
  const viewOptions = (c: Context) => ({
    storage: options.storage,
    apiBaseUrl: apiBaseUrl(c, options.publicBaseUrl),
    imageUrlTtlSeconds: ttl,
    urlCache,
  });

  if (options.metrics) {
    registerMetricsRoute(app, { metrics: options.metrics.registry, store: options.jobs.deps.store, secret: options.metrics.secret });
  }

  app.get("/images/health", async (c) => {
    return c.json({ status: "ok", provider_configured: options.providerConfigured, ...(await options.health?.()) });
  });

  registerOpenApi(app);
  app.get("/images/openapi.json", (c) => {
    const base = apiBaseUrl(c, options.publicBaseUrl);
    return c.json(app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: { title: "FLUX Kontext image jobs", version: "1.0.0", description: "Create and follow FLUX.1 Kontext image jobs." },
      servers: [{ url: base.slice(0, -"/images".length) || "/" }],
    }));
  });

  registerDocsRoute(app);
  registerPlaygroundRoutes(app);

  if (options.signer) {
    const signer = options.signer;
    // Local storage's signed download links (Supabase Storage serves its own).
    app.get("/images/files/*", async (c) => {
      const path = decodeURIComponent(new URL(c.req.url).pathname.replace(/^.*?\/images\/files\//, ""));
      const expires = Number(c.req.query("expires"));
      const signature = c.req.query("signature") ?? "";
      if (!(await signer.verify(path, expires, signature))) {
        throw new ApiError(403, "invalid_signature", "Cannot serve the file: the link is invalid or has expired");
      }
      const object = await options.storage.get(path);
      if (!object) throw new ApiError(404, "not_found", "The file does not exist");
      return c.body(object.bytes, 200, {
        "content-type": object.contentType,
        "cache-control": "private, max-age=3600",
      });
    });
  }

  app.use("/images/jobs", authenticate(options));
  app.use("/images/jobs/*", authenticate(options));

  app.post(
    "/images/jobs",
    (_c, next) => {
      if (!options.providerConfigured) {
        throw new ApiError(503, "provider_not_configured", "Cannot create jobs: BFL_API_KEY is not set on the server");
      }
      return next();
    },
    limitBody({ maxBytes: options.maxBodyBytes }),
    async (c) => {
      const idempotencyKey = readIdempotencyKey(c.req.header("idempotency-key"));
      const read = await readCreateRequest(c.req.raw);
      const request = read.request;
      let outcome;
      try {
        const images = await resolveJobInputs(request, c.get("userId"), options.jobs.deps.store, read.images);
        outcome = await options.jobs.createOnce(c.get("userId"), request, images, {
          idempotencyKey,
          requestHash: requestFingerprint(request, images),
        });
      } finally {
        await disposeImages(read.images);
      }
      const { job, replayed } = outcome;
      const view = await toJobView(job, viewOptions(c));
      const headers: Record<string, string> = { location: view.links.self };
      if (replayed) headers["idempotent-replayed"] = "true";
      if (job.status === "failed" && job.error_code === "provider_rejected_input") {
        // BFL's field errors belong to the caller, like our own validation errors.
        const fields = (job.error_details as { fields?: { field: string; message: string }[] })?.fields ?? [];
        return c.json(errorBody(job.error_code, job.error_message ?? "BFL rejected the request", { job_id: job.id, fields }), 422, headers);
      }
      return c.json({ id: job.id, status: job.status, url: view.links.self, job: view }, 202, headers);
    },
  );

  app.get("/images/jobs", async (c) => {
    const query = ListJobsQuery.safeParse(c.req.query());
    if (!query.success) {
      const details = issuesFromZod(query.error);
      throw new ApiError(400, "invalid_request", `Invalid query: ${details.map((d) => `${d.field}: ${d.message}`).join("; ")}`, { details });
    }
    const before = query.data.cursor ? decodeCursor(query.data.cursor) : undefined;
    const rows = await options.jobs.deps.store.list(c.get("userId"), { limit: query.data.limit + 1, before });
    const page = rows.slice(0, query.data.limit);
    const next = rows.length > query.data.limit ? encodeCursor(page[page.length - 1]) : null;
    const data = await Promise.all(page.map((row) => toJobView(row, viewOptions(c))));
    return c.json({ data, next_cursor: next });
  });

  app.get("/images/jobs/:id/lineage", async (c) => {
    const params = JobIdParam.safeParse({ id: c.req.param("id") });
    if (!params.success) throw ApiError.invalidField("id", "Must be a job id (a UUID)");
    const chain = await options.jobs.deps.store.lineage(params.data.id, c.get("userId"));
    if (chain.length === 0) throw new ApiError(404, "job_not_found", `No job ${params.data.id}`);
    return c.json({ data: await Promise.all(chain.map((job) => toJobView(job, viewOptions(c)))) });
  });

  app.get("/images/jobs/:id", async (c) => {
    const params = JobIdParam.safeParse({ id: c.req.param("id") });
    if (!params.success) throw ApiError.invalidField("id", "Must be a job id (a UUID)");
    const job = await options.jobs.get(params.data.id, c.get("userId"));
    // Another user's job is indistinguishable from a missing one.
    if (!job) throw new ApiError(404, "job_not_found", `No job ${params.data.id}`);
    const view = viewOptions(c);
    if (!FINISHED_STATUSES.includes(job.status)) return c.json(await toJobView(job, view));
    const body = await finishedViews.get(`${view.apiBaseUrl} ${job.id}`, () => toJobView(job, view));
    return c.body(body, 200, { "content-type": "application/json" });
  });

  return app;
}

/** The `images` function's app from built services (used by functions/images and the local server). */
export function imagesAppFor(services: Services): OpenAPIHono<Env> {
  const { config } = services;
  return createImagesApp({
    jobs: services.jobs,
    storage: services.storage,
    log: services.log,
    signer: services.signer,
    authenticator: services.authenticator,
    providerConfigured: Boolean(services.bfl),
    maxBodyBytes: config.maxBodyBytes,
    publicBaseUrl: config.publicBaseUrl,
    health: () => Promise.resolve({ store: config.store }),
    metrics: { registry: services.metrics, secret: config.metricsSecret },
    corsOrigins: config.corsOrigins,
  });
}
