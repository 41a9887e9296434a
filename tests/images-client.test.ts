// The typed client (clients/typescript/images-client.ts) against the real service over HTTP, and
// its hand-written types against the live OpenAPI document, so they cannot drift silently.
import assert from "node:assert/strict";
import {
  type CreateJobAccepted,
  type CreateJobInput,
  createImagesClient,
  type ErrorResponse,
  IMAGE_SLOTS,
  ImagesApiError,
  INPUT_KINDS,
  type Job,
  JOB_STATUSES,
  type JobLineage,
  type JobList,
  MODEL_IDS,
  OUTPUT_FORMATS,
} from "../clients/typescript/images-client.ts";
import { decodeBase64 } from "../shared/images/base64.ts";
import { sniffImage } from "../shared/images/sniff-image.ts";
import { startHarness } from "./support/harness.ts";
import { makePng } from "./support/test-images.ts";

Deno.test("client: create with a Blob file, wait with onUpdate, list, edit by job id, lineage", async () => {
  const h = await startHarness();
  try {
    const client = createImagesClient({ baseUrl: `${h.base}/` });
    const png = makePng(64, 48, 5);
    const accepted = await client.createJob({
      prompt: "Turn the square into a circle",
      seed: 3,
      output_format: "png",
      files: { input_image: new Blob([png], { type: "image/png" }) },
    });
    assert.match(accepted.id, /^[0-9a-f-]{36}$/);
    assert.equal(accepted.url, `${h.base}/jobs/${accepted.id}`);
    assert.equal(accepted.replayed, false);
    assert.deepEqual(decodeBase64(h.sim.submissions[0].body.input_image as string), png, "the file's bytes reach BFL");
    assert.equal(h.sim.submissions[0].body.seed, 3, "multipart numbers arrive as numbers");

    const seen: string[] = [];
    const done = await client.waitForJob(accepted.id, { intervalMs: 50, onUpdate: (job) => seen.push(job.status) });
    assert.equal(done.status, "succeeded");
    assert.equal(seen.at(-1), "succeeded");
    assert.ok(seen.length >= 1);
    assert.equal(done.image?.content_type, "image/png");
    const bytes = new Uint8Array(await (await fetch(done.image!.url)).arrayBuffer());
    assert.equal(sniffImage(bytes)?.format, "png");

    const edit = await client.createJob({ prompt: "Now make it blue", input_job_id: done.id });
    const edited = await client.waitForJob(edit.id, { intervalMs: 50 });
    assert.equal(edited.status, "succeeded");
    assert.equal(edited.parent_job_id, done.id);

    const list = await client.listJobs({ limit: 1 });
    assert.deepEqual(list.data.map((job) => job.id), [edit.id], "newest first");
    assert.ok(list.next_cursor);
    const next = await client.listJobs({ limit: 1, cursor: list.next_cursor });
    assert.deepEqual(next.data.map((job) => job.id), [done.id]);
    assert.equal(next.next_cursor, null);

    const lineage = await client.lineage(edit.id);
    assert.deepEqual(lineage.data.map((job) => job.id), [done.id, edit.id]);
    const reread = await client.getJob(done.id);
    assert.equal(reread.id, done.id);
    assert.equal(reread.status, "succeeded");
  } finally {
    await h.close();
  }
});

Deno.test("client: API errors become ImagesApiError with status, code, message and field details", async () => {
  const h = await startHarness();
  try {
    const client = createImagesClient({ baseUrl: h.base });
    const empty = await client.createJob({ prompt: "   " }).catch((error) => error);
    assert.ok(empty instanceof ImagesApiError);
    assert.equal(empty.status, 400);
    assert.equal(empty.code, "invalid_request");
    assert.equal(empty.message, "Invalid request: prompt: Must not be empty");
    assert.deepEqual(empty.fieldErrors, [{ field: "prompt", message: "Must not be empty" }]);

    const wrongModel = await client.createJob({ prompt: "x", model: "flux-bagel-alpha", steps: 500 }).catch((e) => e);
    assert.equal(wrongModel.status, 400);
    assert.deepEqual(wrongModel.fieldErrors.map((d: { field: string }) => d.field).sort(), ["input_image", "steps"]);

    const missing = await client.getJob(crypto.randomUUID()).catch((e) => e);
    assert.equal(missing.status, 404);
    assert.equal(missing.code, "job_not_found");
    const notAnId = await client.lineage("nope").catch((e) => e);
    assert.equal(notAnId.status, 400);
    assert.deepEqual(notAnId.fieldErrors, [{ field: "id", message: "Must be a job id (a UUID)" }]);

    // BFL's 422 field errors arrive under details.fields.
    h.sim.faults.submitStatus = { status: 422 };
    const rejected = await client.createJob({ prompt: "y" }).catch((e) => e);
    assert.equal(rejected.status, 422);
    assert.equal(rejected.code, "provider_rejected_input");
    assert.ok(rejected.fieldErrors.length > 0);

    // The access token goes out as a Bearer token (this one cannot be verified: 401).
    const withToken = createImagesClient({ baseUrl: h.base, getAccessToken: () => Promise.resolve("aaa.bbb.ccc") });
    const unauthorized = await withToken.listJobs().catch((e) => e);
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.code, "invalid_token");

    // Unreachable server: status 0, network_error, the URL in the message.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    const down = await createImagesClient({ baseUrl: `http://127.0.0.1:${port}/images` }).listJobs().catch((e) => e);
    assert.ok(down instanceof ImagesApiError);
    assert.equal(down.status, 0);
    assert.equal(down.code, "network_error");
    assert.match(down.message, new RegExp(`127\\.0\\.0\\.1:${port}`));

    // A non-JSON error page (a gateway) still becomes a readable error.
    const gateway = createImagesClient({
      baseUrl: h.base,
      fetch: () => Promise.resolve(new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" })),
    });
    const bad = await gateway.getJob(crypto.randomUUID()).catch((e) => e);
    assert.equal(bad.status, 502);
    assert.equal(bad.code, "http_error");
    assert.match(bad.message, /502 Bad Gateway: <html>Bad gateway<\/html>/);
  } finally {
    await h.close();
  }
});

Deno.test("client: idempotency key passthrough, server headers, waitForJob abort and timeout", async () => {
  const h = await startHarness({ env: { SERVER_API_KEYS: "srv-key" }, simulator: { readyAfterMs: 60_000 } });
  try {
    const user = crypto.randomUUID();
    const client = createImagesClient({ baseUrl: h.base, headers: { apikey: "srv-key", "x-user-id": user } });
    const first = await client.createJob({ prompt: "a red kite", idempotencyKey: "kite-1" });
    const again = await client.createJob({ prompt: "a red kite", idempotencyKey: "kite-1" });
    assert.equal(again.id, first.id);
    assert.equal(first.replayed, false);
    assert.equal(again.replayed, true);
    assert.equal(h.sim.submissions.length, 1);
    const conflict = await client.createJob({ prompt: "another body", idempotencyKey: "kite-1" }).catch((e) => e);
    assert.ok(conflict instanceof ImagesApiError);
    assert.equal(conflict.status, 409);
    const blank = await client.createJob({ prompt: "x", idempotencyKey: " " }).catch((e) => e);
    assert.equal(blank.code, "invalid_idempotency_key");

    // The server key's user owns the job; the anonymous user does not see it.
    assert.equal((await client.listJobs()).data.length, 1);
    assert.equal((await createImagesClient({ baseUrl: h.base }).listJobs()).data.length, 0);

    const controller = new AbortController();
    const updates: Job[] = [];
    const waiting = client.waitForJob(first.id, {
      intervalMs: 30,
      signal: controller.signal,
      onUpdate: (job) => {
        updates.push(job);
        if (updates.length === 2) controller.abort(new Error("stop waiting"));
      },
    });
    await assert.rejects(waiting, /stop waiting/);
    assert.equal(updates.length, 2);
    assert.equal(updates[0].status, "running");

    const timedOut = await client.waitForJob(first.id, { intervalMs: 20, timeoutMs: 100 }).catch((e) => e);
    assert.equal(timedOut.code, "wait_timeout");
  } finally {
    await h.close();
  }
});

Deno.test("client: React Native style {uri, name, type} files go into FormData as they are", async () => {
  const appended: [string, unknown, string | undefined][] = [];
  const OriginalFormData = globalThis.FormData;
  class RecordingFormData {
    append(name: string, value: unknown, filename?: string) {
      appended.push([name, value, filename]);
    }
  }
  let sentBody: unknown;
  const client = createImagesClient({
    baseUrl: "http://images.test/images",
    fetch: (_url: RequestInfo | URL, init?: RequestInit) => {
      sentBody = init?.body;
      const job = { id: "j" } as unknown as Job;
      return Promise.resolve(Response.json({ id: "j", status: "queued", url: "u", job }, { status: 202 }));
    },
  });
  const file = { uri: "file:///photo.jpg", name: "photo.jpg", type: "image/jpeg" };
  globalThis.FormData = RecordingFormData as unknown as typeof FormData;
  try {
    await client.createJob({ prompt: "Make it snow", seed: 9, files: { input_image: file } });
  } finally {
    globalThis.FormData = OriginalFormData;
  }
  assert.ok(sentBody instanceof RecordingFormData);
  assert.deepEqual(appended, [["prompt", "Make it snow", undefined], ["seed", "9", undefined], ["input_image", file, undefined]]);
});

// ------------------------------------------------------------------ drift: types vs OpenAPI

/**
 * For each property of T: whether it is optional and whether it may be null. The compiler checks
 * these literals against the hand-written types (a wrong flag, a missing or an extra key does not
 * compile); the test below checks them against the server's OpenAPI document.
 */
type Shape<T> = {
  [K in keyof T]-?: { optional: object extends Pick<T, K> ? true : false; nullable: null extends T[K] ? true : false };
};
const req = { optional: false, nullable: false } as const;
const opt = { optional: true, nullable: false } as const;
const nul = { optional: false, nullable: true } as const;

const jobShape: Shape<Job> = {
  id: req, model: req, status: req, prompt: req, params: req, inputs: req, error: nul, provider: req, image: nul,
  parent_job_id: nul, created_at: req, updated_at: req, submitted_at: nul, finished_at: nul, links: req,
};
const inputShape: Shape<Job["inputs"][number]> = { slot: req, kind: req, job_id: opt, content_type: opt, bytes: opt, url: opt };
const providerShape: Shape<Job["provider"]> = { status: nul, cost: nul, input_mp: nul, output_mp: nul };
const imageShape: Shape<NonNullable<Job["image"]>> = { url: req, content_type: req, bytes: req, expires_at: req };
const errorShape: Shape<NonNullable<Job["error"]>> = { code: req, message: req, details: { optional: true, nullable: true } };
const linksShape: Shape<Job["links"]> = { self: req };
const acceptedShape: Shape<CreateJobAccepted> = { id: req, status: req, url: req, job: req };
const listShape: Shape<JobList> = { data: req, next_cursor: nul };
const lineageShape: Shape<JobLineage> = { data: req };
const errorResponseShape: Shape<ErrorResponse> = { error: req };
const createShape: Shape<CreateJobInput> = {
  model: opt, prompt: req, seed: opt, aspect_ratio: opt, output_format: opt, prompt_upsampling: opt, safety_tolerance: opt,
  input_image: opt, input_image_2: opt, input_image_3: opt, input_image_4: opt,
  input_job_id: opt, input_job_id_2: opt, input_job_id_3: opt, input_job_id_4: opt, steps: opt, guidance: opt,
};

// deno-lint-ignore no-explicit-any
type Schema = any;

function resolve(doc: Schema, schema: Schema): Schema {
  return schema?.$ref ? resolve(doc, doc.components.schemas[schema.$ref.replace("#/components/schemas/", "")]) : schema;
}

function assertShape(doc: Schema, schema: Schema, shape: Record<string, { optional: boolean; nullable: boolean }>, name: string) {
  const s = resolve(doc, schema);
  assert.deepEqual(Object.keys(shape).sort(), Object.keys(s.properties).sort(), `${name}: property names`);
  const required = new Set<string>(s.required ?? []);
  for (const [key, flags] of Object.entries(shape)) {
    const property = resolve(doc, s.properties[key]);
    const types = ([] as string[]).concat(property.type ?? []);
    // No type at all (`{}`, zod's unknown) admits null too.
    const untyped = types.length === 0 && !property.anyOf && !property.oneOf && !property.properties;
    const nullable = untyped || types.includes("null") || (property.anyOf ?? []).some((p: Schema) => p.type === "null");
    // A field with a default is optional for the caller even if the schema lists it as required.
    const optional = !required.has(key) || property.default !== undefined;
    assert.equal(optional, flags.optional, `${name}.${key}: optional`);
    assert.equal(nullable, flags.nullable, `${name}.${key}: nullable`);
  }
}

Deno.test("client types match the live OpenAPI document (names, optional/nullable, enums)", async () => {
  const h = await startHarness();
  try {
    const doc = await (await fetch(`${h.base}/openapi.json`)).json();
    const schemas = doc.components.schemas;
    const job = schemas.Job;
    assertShape(doc, job, jobShape, "Job");
    assertShape(doc, job.properties.inputs.items, inputShape, "Job.inputs[]");
    assertShape(doc, job.properties.provider, providerShape, "Job.provider");
    assertShape(doc, job.properties.image, imageShape, "Job.image");
    assertShape(doc, job.properties.error, errorShape, "Job.error");
    assertShape(doc, job.properties.links, linksShape, "Job.links");
    assertShape(doc, schemas.CreateJobAccepted, acceptedShape, "CreateJobAccepted");
    assertShape(doc, schemas.JobList, listShape, "JobList");
    assertShape(doc, schemas.JobLineage, lineageShape, "JobLineage");
    assertShape(doc, schemas.ErrorResponse, errorResponseShape, "ErrorResponse");
    assertShape(doc, schemas.ErrorResponse.properties.error, errorShape, "ErrorResponse.error");
    assertShape(doc, schemas.CreateJobRequest, createShape, "CreateJobRequest");

    // The routes the client calls, and the request body the create call sends, exist as such.
    const create = doc.paths["/images/jobs"].post;
    assert.deepEqual(Object.keys(create.requestBody.content).sort(), ["application/json", "multipart/form-data"]);
    assert.ok(create.responses["202"]);
    assert.ok(doc.paths["/images/jobs"].get.parameters.some((p: Schema) => p.name === "cursor"));
    assert.ok(doc.paths["/images/jobs/{id}"].get);
    assert.ok(doc.paths["/images/jobs/{id}/lineage"].get);
    assert.ok(create.parameters.some((p: Schema) => p.name === "idempotency-key" && p.in === "header"));

    // Enumerations: the client's constants equal the document's enums.
    const sorted = (values: readonly string[]) => [...values].sort();
    assert.deepEqual(sorted(JOB_STATUSES), sorted(job.properties.status.enum));
    assert.deepEqual(sorted(JOB_STATUSES), sorted(schemas.CreateJobAccepted.properties.status.enum));
    assert.deepEqual(sorted(MODEL_IDS), sorted(job.properties.model.enum));
    assert.deepEqual(sorted(MODEL_IDS), sorted(schemas.CreateJobRequest.properties.model.enum));
    assert.deepEqual(sorted(INPUT_KINDS), sorted(job.properties.inputs.items.properties.kind.enum));
    assert.deepEqual(sorted(OUTPUT_FORMATS), sorted(schemas.CreateJobRequest.properties.output_format.enum));
    assert.deepEqual(
      sorted(IMAGE_SLOTS),
      Object.keys(schemas.CreateJobRequest.properties).filter((k) => /^input_image(_\d)?$/.test(k)).sort(),
    );
  } finally {
    await h.close();
  }
});
