/**
 * Where a request's time goes, measured in-process (no HTTP between client and app), so the
 * figures of bench/lib/overhead.ts can be pinned on parts of shared/:
 *
 * - status read: the images app's whole handler for GET /images/jobs/:id against the bare app's,
 *   and the read path's pieces — the store read (PGlite's own floor beside it), building the view
 *   (which signs the image URL with crypto.subtle; node:crypto's HMAC beside it), JSON, auth;
 * - job creation: each SQL statement and call JobService.create makes, in order, on PGlite, with
 *   the simulator (in this process) as BFL;
 * - PostgreSQL: one round trip through postgres.js as the service configures it, against npm:pg
 *   and a bare Deno TCP echo (bench/lib/pg-clients.ts, its own process).
 *
 * Sequential calls after a warm-up; mean per call.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import { configFromEnv } from "../../shared/config/load-config.ts";
import { createImagesApp, imagesAppFor } from "../../shared/api/create-images-app.ts";
import { JobIdParam } from "../../shared/api/job-schemas.ts";
import type { JobService } from "../../shared/jobs/job-service.ts";
import { SignedUrlCache, toJobView } from "../../shared/api/job-view.ts";
import { readCreateRequest } from "../../shared/api/read-create-request.ts";
import { requestFingerprint } from "../../shared/api/request-fingerprint.ts";
import { providerParams } from "../../shared/jobs/job-service.ts";
import { ACCOUNT_MAX_ACTIVE_TASKS, MODEL_SPECS } from "../../shared/jobs/models.ts";
import { buildSubmitBody } from "../../shared/jobs/submit-body.ts";
import { createLogger } from "../../shared/log/logger.ts";
import { openPglite } from "../../shared/store/pglite-client.ts";
import { openPostgres } from "../../shared/store/postgres-client.ts";
import { applyMigrations } from "../../shared/store/apply-migrations.ts";
import { SqlJobStore } from "../../shared/store/sql-job-store.ts";
import type { SqlClient } from "../../shared/store/sql-client.ts";
import { buildServices } from "../../shared/wiring/build-services.ts";
import { createTestDatabase } from "../../tests/support/postgres-cluster.ts";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { OpenAPIHono } from "@hono/zod-openapi";
import { requestLogging } from "../../shared/http/request-logging.ts";
import { bareApp, JOB } from "./bare-app.ts";
import { type BenchContext, serverEnv } from "./context.ts";
import { Child, childEnv, CONFIG, ROOT } from "./procs.ts";
import type { Table } from "./report.ts";
import { mean, num } from "./stats.ts";

async function perCall(work: () => Promise<unknown>, iterations: number): Promise<number> {
  // As many warm-up calls as measured ones: fewer leave the first figures inflated by the JIT.
  for (let i = 0; i < iterations; i++) await work();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await work();
  return ((performance.now() - start) / iterations) * 1000;
}

async function insertFinishedJob(sql: SqlClient, userId: string): Promise<string> {
  const store = new SqlJobStore(sql);
  const id = crypto.randomUUID();
  await store.ensureUser(userId);
  await store.insert({
    id,
    user_id: userId,
    model: "flux-kontext-pro",
    params: { prompt: "bench: attribution", output_format: "jpeg", safety_tolerance: 2 },
    inputs: [],
  });
  await sql.query(
    `update public.image_jobs set status = 'succeeded', provider_status = 'Ready', cost = 4, output_mp = 1.05,
       result_path = $2, result_content_type = 'image/jpeg', result_bytes = 1234,
       submitted_at = now(), ready_at = now(), finished_at = now()
     where id = $1`,
    [id, `results/${userId}/${id}.jpeg`],
  );
  return id;
}

async function pgClients(
  url: string,
  jobId: string,
  userId: string,
  iterations: number,
): Promise<Record<string, number>> {
  const child = new Child("pg-clients", [
    "run",
    "--config",
    CONFIG,
    "--no-lock",
    "--allow-all",
    `${ROOT}/bench/lib/pg-clients.ts`,
  ], {
    env: childEnv({
      DATABASE_URL: url,
      JOB_ID: jobId,
      USER_ID: userId,
      ITERATIONS: String(iterations),
    }),
  });
  const status = await child.status;
  await child.stop();
  const line = child.lines.find((l) => l.startsWith("PG_JSON "));
  if (!status.success || !line) throw new Error(`pg-clients failed:\n${child.tail()}`);
  return JSON.parse(line.slice("PG_JSON ".length));
}

export interface Attribution {
  tables: Table[];
  notes: string[];
  raw: Record<string, unknown>;
}

export async function attributeCosts(ctx: BenchContext): Promise<Attribution> {
  const iterations = ctx.quick ? 150 : 2000;
  const dataDir = await Deno.makeTempDir({ prefix: "bench-attr-" });
  const sql = await openPglite();
  const config = configFromEnv(
    { ...serverEnv(ctx.sim), DATA_DIR: dataDir } as Record<string, string>,
  );
  const services = await buildServices(config, { sql, log: createLogger({ minLevel: "error" }) });
  const read: Record<string, number> = {};
  const create: Record<string, number[]> = {};
  const pg: Record<string, number> = {};
  const notes: string[] = [];
  try {
    const userId = config.anonymousUserId!;
    const id = await insertFinishedJob(sql, userId);
    const app = imagesAppFor(services);
    const url = `http://127.0.0.1:8000/images/jobs/${id}`;
    const job = (await services.store.get(id, userId))!;
    const viewOptions = {
      storage: services.storage,
      apiBaseUrl: "http://127.0.0.1:8000/images",
      imageUrlTtlSeconds: 3600,
    };
    const view = await toJobView(job, viewOptions);
    const hmacKey = crypto.getRandomValues(new Uint8Array(32));

    // ---- status read
    read.bareFetch = await perCall(
      async () =>
        await (await bareApp.fetch(new Request("http://127.0.0.1:8000/images/jobs/x"))).text(),
      iterations,
    );
    read.serviceFetch = await perCall(async () => {
      const response = await app.fetch(new Request(url));
      if (response.status !== 200) throw new Error(`in-process GET answered ${response.status}`);
      return await response.text();
    }, iterations);
    // The same app with the job served from memory: what a read costs without the database.
    const memoryApp = createImagesApp({
      jobs: { get: () => Promise.resolve(job) } as unknown as JobService,
      storage: services.storage,
      log: services.log,
      authenticator: services.authenticator,
      signer: services.signer,
      providerConfigured: true,
      maxBodyBytes: config.maxBodyBytes,
    });
    read.memoryFetch = await perCall(async () => {
      const response = await memoryApp.fetch(new Request(url));
      if (response.status !== 200) {
        throw new Error(`in-process GET (memory) answered ${response.status}`);
      }
      return await response.text();
    }, iterations);
    read.idParam = await perCall(() => Promise.resolve(JobIdParam.safeParse({ id })), iterations);
    read.jobsGet = await perCall(() => services.jobs.get(id, userId), iterations);
    read.storeGet = await perCall(() => services.store.get(id, userId), iterations);
    read.pgliteFloor = await perCall(() => sql.query("select 1"), iterations);
    const cachedOptions = { ...viewOptions, urlCache: new SignedUrlCache() };
    read.toJobViewCached = await perCall(() => toJobView(job, cachedOptions), iterations);
    read.toJobView = await perCall(() => toJobView(job, viewOptions), iterations);
    read.signedUrl = await perCall(
      () => services.storage.signedUrl(job.result_path!, 3600, viewOptions.apiBaseUrl),
      iterations,
    );
    read.nodeHmac = await perCall(
      () =>
        Promise.resolve(
          createHmac("sha256", hmacKey).update(`${job.result_path}\n${1900000000}`).digest(
            "base64url",
          ),
        ),
      iterations,
    );
    read.jsonStringify = await perCall(() => Promise.resolve(JSON.stringify(view)), iterations);
    // The bare app plus one piece of the images app's middleware at a time.
    const quietLog = createLogger({ write: () => {} });
    const variants: [string, Hono][] = [
      ["withLogging", new Hono().use("*", requestLogging({ log: quietLog }))],
      [
        "withCors",
        new Hono().use(
          "*",
          cors({ origin: "*", exposeHeaders: ["location", "x-request-id"], maxAge: 600 }),
        ),
      ],
      ["openApiHono", new OpenAPIHono() as unknown as Hono],
    ];
    for (const [name, variant] of variants) {
      variant.get("/images/jobs/:id", (c) => c.json(JOB));
      read[name] = await perCall(
        async () =>
          await (await variant.fetch(new Request("http://127.0.0.1:8000/images/jobs/x"))).text(),
        iterations,
      );
    }
    read.authenticate = await perCall(() => services.authenticator(new Request(url)), iterations);
    const quiet = createLogger({ write: () => {} });
    read.logLine = await perCall(
      () =>
        Promise.resolve(
          quiet.info("http.request", {
            method: "GET",
            path: `/images/jobs/${id}`,
            status: 200,
            ms: 0.2,
          }),
        ),
      iterations,
    );

    // ---- job creation, statement by statement (what JobService.create and submitJob do, in order)
    const { store, storage, bfl } = services.runner;
    const worker = services.runner.workerId;
    const jobs = ctx.quick ? 40 : 200;
    const time = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      const value = await work();
      (create[name] ??= []).push((performance.now() - t0) * 1000);
      return value;
    };
    for (let i = 0; i < jobs + 10; i++) {
      if (i === 10) { for (const key of Object.keys(create)) create[key] = []; // the first 10 are warm-up
       }
      const request = new Request("http://127.0.0.1:8000/images/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          prompt: `bench: attribution create ${i} [sim:ready-after=0]`,
          output_format: "png",
        }),
      });
      const t0 = performance.now();
      const input = await time(
        "readCreateRequest (JSON body, zod validation)",
        () => readCreateRequest(request),
      );
      await time(
        "requestFingerprint (sha-256 of the request)",
        () => Promise.resolve(requestFingerprint(input.request, input.images)),
      );
      await time(
        "store.ensureUser (insert … on conflict do nothing; remembered per process)",
        () => store.ensureUser!(userId),
      );
      const newId = crypto.randomUUID();
      const submitting = await time(
        "store.create with the inline submit's claim (image_jobs_create: insert, fairness and slot check, claim)",
        () =>
          store.create({
            id: newId,
            user_id: userId,
            model: input.request.model,
            params: providerParams(input.request),
            inputs: [],
          }, {
            owner: worker,
            leaseSeconds: 60,
            accountMaxActive: ACCOUNT_MAX_ACTIVE_TASKS,
            modelMaxActive: MODEL_SPECS[input.request.model].maxActiveTasks,
            webhookSecret: null,
          }),
      );
      if (submitting.status !== "submitting") throw new Error(`attribution create: ${submitting.status}`);
      const inserted = submitting;
      const claimed = submitting;
      const body = await time("buildSubmitBody", () => buildSubmitBody(claimed!, storage));
      const outcome = await time(
        "bfl.submit (HTTP to the simulator, in this process)",
        () => bfl!.submit(inserted.model, body),
      );
      if (outcome.kind !== "accepted") throw new Error(`attribution submit: ${outcome.kind}`);
      const running = await time(
        "store.transition → running",
        () =>
          store.transition(inserted.id, worker, ["submitting"], {
            status: "running",
            provider_task_id: outcome.id,
            polling_url: outcome.pollingUrl,
            provider_status: "Pending",
            submitted_at: new Date(),
            next_check_at: new Date(Date.now() + 1500),
          }),
      );
      await time("toJobView of the answer", () => toJobView(running ?? submitting, viewOptions));
      (create["(sum of the steps above)"] ??= []).push((performance.now() - t0) * 1000);
      // Free the slot (not timed), so the 24-task limit is never in the way.
      await sql.query(
        "update public.image_jobs set status = 'succeeded', finished_at = now() where id = $1",
        [inserted.id],
      );
    }
    const before = performance.now();
    for (let i = 0; i < jobs; i++) {
      const response = await app.fetch(
        new Request("http://127.0.0.1:8000/images/jobs", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            prompt: `bench: attribution whole ${i} [sim:ready-after=0]`,
            output_format: "png",
          }),
        }),
      );
      const answer = await response.json();
      if (response.status !== 202 || answer.status !== "running") {
        throw new Error(`in-process POST: ${response.status} ${answer.status}`);
      }
      await sql.query(
        "update public.image_jobs set status = 'succeeded', finished_at = now() where id = $1",
        [answer.id],
      );
    }
    create["images app fetch, POST /images/jobs (whole handler; includes a free-the-slot update)"] =
      [((performance.now() - before) / jobs) * 1000];

    // ---- PostgreSQL drivers
    try {
      const cluster = await ctx.postgres();
      const db = await createTestDatabase(cluster);
      const client = openPostgres(db.url);
      try {
        await applyMigrations(client);
        const pgId = await insertFinishedJob(client, userId);
        const pgStore = new SqlJobStore(client);
        pg["SqlJobStore.get on PostgreSQL (postgres.js, as the service runs it)"] = await perCall(
          () => pgStore.get(pgId, userId),
          Math.min(iterations, 500),
        );
        Object.assign(pg, await pgClients(db.url, pgId, userId, Math.min(iterations, 500)));
      } finally {
        await client.close();
        await db.drop().catch(() => {});
      }
    } catch (error) {
      notes.push(`PostgreSQL drivers not measured: ${(error as Error).message}`);
    }
  } finally {
    await services.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }

  const share = (us: number) => `${num((us / read.serviceFetch) * 100, 0)}%`;
  const tables: Table[] = [{
    title: `Status read, in-process cost by component (µs per call, mean of ${iterations})`,
    header: ["Component", "µs", "Share of the service's handler"],
    rows: [
      [
        "images app fetch, GET /images/jobs/:id (whole handler, PGlite)",
        num(read.serviceFetch),
        "100%",
      ],
      [
        "…JobService.get (a finished job comes from its in-process cache after the first read)",
        num(read.jobsGet),
        share(read.jobsGet),
      ],
      [
        "(not on this path once cached) SqlJobStore.get on PGlite: a first read, or any read of an in-flight job",
        num(read.storeGet),
        "—",
      ],
      [
        "(not on this path) PGlite's floor: select 1 through the same SqlClient",
        num(read.pgliteFloor),
        "—",
      ],
      [
        "…toJobView with the app's SignedUrlCache (the image URL signed once, reused)",
        num(read.toJobViewCached),
        share(read.toJobViewCached),
      ],
      [
        "(not on this path once cached) toJobView signing the image URL each time",
        num(read.toJobView),
        "—",
      ],
      [
        "(not on this path once cached) LocalImageStorage.signedUrl → UrlSigner.sign (crypto.subtle HMAC-SHA256)",
        num(read.signedUrl),
        "—",
      ],
      [
        "(for comparison) node:crypto createHmac, synchronous",
        num(read.nodeHmac),
        "—",
      ],
      ["…JSON.stringify of the view", num(read.jsonStringify), share(read.jsonStringify)],
      ["…authenticator (anonymous local user)", num(read.authenticate), share(read.authenticate)],
      [
        "…request logging: one http.request info line (JSON + redact; the server then writes it to stdout)",
        num(read.logLine),
        share(read.logLine),
      ],
      ["…JobIdParam.safeParse (zod uuid check)", num(read.idParam), share(read.idParam)],
      [
        "the same handler with the job from memory instead of the store (no database)",
        num(read.memoryFetch),
        share(read.memoryFetch),
      ],
      ["bare Hono app fetch (constant JSON)", num(read.bareFetch), share(read.bareFetch)],
      [
        "bare Hono app + requestLogging (shared/http/request-logging.ts; AsyncLocalStorage, a log line to a no-op sink)",
        num(read.withLogging),
        share(read.withLogging),
      ],
      ["bare Hono app + hono/cors", num(read.withCors), share(read.withCors)],
      ["bare app on OpenAPIHono instead of Hono", num(read.openApiHono), share(read.openApiHono)],
    ],
  }];
  const createRows = Object.entries(create).map(([name, values]) => [name, num(mean(values))]);
  tables.push({
    title: `Job creation on PGlite, step by step (µs per call, mean of ${
      ctx.quick ? 40 : 200
    } jobs, in the order the service runs them)`,
    header: ["Step", "µs"],
    rows: createRows,
  });
  if (Object.keys(pg).length > 0) {
    tables.push({
      title:
        "PostgreSQL round trips from Deno 2.1.4 over loopback (µs per query; bench/lib/pg-clients.ts)",
      header: ["Client and query", "µs"],
      rows: Object.entries(pg).map(([name, us]) => [name, num(us)]),
    });
  }
  notes.push(
    `In-process attribution runs in the benchmark process, no HTTP. The service's read handler costs ${
      num(read.serviceFetch / read.bareFetch, 1)
    }× the bare app's.`,
  );
  return { tables, notes, raw: { read, create, pg } };
}
