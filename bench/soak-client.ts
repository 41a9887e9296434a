/**
 * The soak's users: good mobile clients acting through a server key (`apikey` + `x-user-id`).
 *
 * - Every create carries an Idempotency-Key. On a network error, a timeout or a 5xx the SAME request
 *   (same key, same bytes) is sent again with exponential backoff until a 202 or a 4xx; a 429 is
 *   retried after its Retry-After. So a job is never created twice, even across server restarts.
 * - A created job is followed with GET /images/jobs/:id (backing off from 0.5 s to 3 s) until it is
 *   terminal; a succeeded job's image is downloaded once through the signed URL to prove the stored
 *   copy is served.
 *
 * Every job's prompt starts with a unique token `soak#<n>`, so the simulator's accepted submissions
 * can be attributed to jobs without the service's cooperation.
 *
 * @module
 */
import { makePng } from "../tests/support/test-images.ts";

export type Model = "flux-kontext-pro" | "flux-kontext-max" | "flux-bagel-alpha";
export type JobKind = "text" | "edit" | "multi-reference" | "bagel-edit";
export type Expected = "succeeded" | "request_moderated" | "content_moderated";
export const TERMINAL = ["succeeded", "failed", "moderated"] as const;

export interface JobPlan {
  n: number;
  /** `soak#<n>`: unique, at the start of the prompt. */
  token: string;
  userId: string;
  model: Model;
  kind: JobKind;
  prompt: string;
  /** What the simulator will make of the task (its prompt directives), absent injected faults. */
  expected: Expected;
  readyAfterMs: number;
  outputFormat: "jpeg" | "png";
  aspectRatio?: string;
  /** Uploaded as multipart files, input_image, input_image_2, ... */
  images: Uint8Array[];
  idempotencyKey: string;
}

export interface JobRecord {
  plan: JobPlan;
  /** Set once a create answered 202. */
  id?: string;
  createAttempts: number;
  /** Answered 4xx (other than 429): the job was not created. */
  rejected?: { status: number; code: string };
  final?: { status: string; errorCode: string | null };
  /** The stored image was downloaded through its signed URL (succeeded jobs). */
  imageServed?: boolean;
  /** The deadline passed before the job was created or terminal. */
  gaveUp?: "create" | "follow";
}

export interface ClientStats {
  createRequests: number;
  /** 202s answered as a replay of an earlier request with the same key (a retry that had reached the server). */
  replayed: number;
  networkErrors: number;
  /** Non-2xx answers by status (creates and reads). */
  httpStatus: Record<string, number>;
  /** 429s from the API's own per-user limits, honoured through Retry-After. */
  rateLimited: number;
  statusReads: number;
  imageDownloads: number;
  imageDownloadFailures: number;
}

export interface ClientContext {
  /** e.g. http://127.0.0.1:PORT/images */
  api: string;
  apiKey: string;
  /** Epoch ms: nothing is retried or followed after this. */
  deadline: number;
  stats: ClientStats;
  /** Per-request timeout (a hung request is retried like a network error). */
  requestTimeoutMs: number;
  pollMs: { first: number; max: number };
  /** Create requests under way: job number → when the request was sent (epoch ms). */
  inFlightCreates: Map<number, number>;
  /** Requests of any kind under way. */
  inFlight: number;
}

export function newClientStats(): ClientStats {
  return {
    createRequests: 0,
    replayed: 0,
    networkErrors: 0,
    httpStatus: {},
    rateLimited: 0,
    statusReads: 0,
    imageDownloads: 0,
    imageDownloadFailures: 0,
  };
}

/** A small seeded PRNG (mulberry32), so a run's job mix is reproducible from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SUBJECTS = [
  "a small furry elephant pet looks out from a cat house",
  "a lighthouse at dusk, watercolor",
  "change the car color to red",
  "replace the background with a beach",
  "a bowl of ramen, studio lighting",
  "make it snow",
  "a fox in a library, oil painting",
  "turn the photo into a pencil sketch",
];
const RATIOS = ["1:1", "16:9", "9:16", "4:3", "3:4", "21:9"];

export interface PlanOptions {
  jobs: number;
  users: number;
  seed: number;
  /** `[sim:ready-after=<ms>]` is drawn uniformly from this range. */
  readyAfterMs: [number, number];
  /** Fraction of jobs with `[sim:request-moderated]`, and with `[sim:content-moderated]`. */
  moderatedShare: number;
}

/**
 * The job mix: ~62% kontext-pro text-to-image, ~8% pro edits (one upload), ~10% kontext-max
 * text-to-image, ~10% multi-reference (2–3 uploads, pro or max), ~10% flux-bagel-alpha edits
 * (one upload), all multipart when there is a file. Users take turns (round robin).
 */
export function planJobs(options: PlanOptions, runId: string): JobPlan[] {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const userIds = Array.from({ length: options.users }, (_, i) => {
    const hex = (options.seed * 1000 + i).toString(16).padStart(12, "0").slice(-12);
    return `00000000-50a4-4000-8000-${hex}`;
  });
  const [minReady, maxReady] = options.readyAfterMs;
  return Array.from({ length: options.jobs }, (_, n) => {
    const r = random();
    const kind: JobKind = r < 0.62
      ? "text"
      : r < 0.70
      ? "edit"
      : r < 0.80
      ? "text"
      : r < 0.90
      ? "multi-reference"
      : "bagel-edit";
    const model: Model = kind === "bagel-edit"
      ? "flux-bagel-alpha"
      : (r >= 0.70 && r < 0.80) || (kind === "multi-reference" && random() < 0.3)
      ? "flux-kontext-max"
      : "flux-kontext-pro";
    const imageCount = kind === "text"
      ? 0
      : kind === "multi-reference"
      ? 2 + Math.floor(random() * 2)
      : 1;
    const images = Array.from(
      { length: imageCount },
      (_, i) => makePng(16 + 4 * i, 16, n * 8 + i + 1),
    );
    const m = random();
    const expected: Expected = m < options.moderatedShare
      ? "request_moderated"
      : m < 2 * options.moderatedShare
      ? "content_moderated"
      : "succeeded";
    const readyAfterMs = Math.round(minReady + random() * (maxReady - minReady));
    const directive = expected === "request_moderated"
      ? " [sim:request-moderated]"
      : expected === "content_moderated"
      ? " [sim:content-moderated]"
      : "";
    const token = `soak#${n}`;
    return {
      n,
      token,
      userId: userIds[n % userIds.length],
      model,
      kind,
      prompt: `${token} ${pick(SUBJECTS)} [sim:ready-after=${readyAfterMs}]${directive}`,
      expected,
      readyAfterMs,
      outputFormat: random() < 0.25 ? "png" : "jpeg",
      aspectRatio: model !== "flux-bagel-alpha" && random() < 0.5 ? pick(RATIOS) : undefined,
      images,
      idempotencyKey: `soak-${runId}-${n}`,
    };
  });
}

/** The create request, rebuilt identically for every retry (a body can be sent only once). */
function createRequest(plan: JobPlan): { body: BodyInit; headers: Record<string, string> } {
  if (plan.images.length === 0) {
    const body: Record<string, unknown> = {
      model: plan.model,
      prompt: plan.prompt,
      output_format: plan.outputFormat,
    };
    if (plan.aspectRatio) body.aspect_ratio = plan.aspectRatio;
    return { body: JSON.stringify(body), headers: { "content-type": "application/json" } };
  }
  const form = new FormData();
  form.set("model", plan.model);
  form.set("prompt", plan.prompt);
  form.set("output_format", plan.outputFormat);
  if (plan.aspectRatio) form.set("aspect_ratio", plan.aspectRatio);
  if (plan.model === "flux-bagel-alpha") form.set("steps", "30");
  plan.images.forEach((bytes, i) => {
    form.set(
      i === 0 ? "input_image" : `input_image_${i + 1}`,
      new File([bytes], `ref-${i + 1}.png`, { type: "image/png" }),
    );
  });
  return { body: form, headers: {} }; // fetch sets the multipart boundary
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const jitter = (ms: number) => Math.round(ms / 2 + Math.random() * ms / 2);
const backoff = (attempt: number) => jitter(Math.min(5000, 200 * 2 ** attempt));

/** fetch with a timeout whose timer is always cleared. */
async function request(ctx: ClientContext, url: string, init: RequestInit = {}): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error("client timeout")),
    ctx.requestTimeoutMs,
  );
  ctx.inFlight++;
  try {
    const response = await fetch(url, { ...init, signal: controller.signal });
    // Read the body inside the timeout too, so a connection cut mid-body is a network error.
    const bytes = new Uint8Array(await response.arrayBuffer());
    return new Response(response.status === 204 ? null : bytes, {
      status: response.status,
      headers: response.headers,
    });
  } finally {
    ctx.inFlight--;
    clearTimeout(timer);
  }
}

function countStatus(ctx: ClientContext, status: number) {
  ctx.stats.httpStatus[status] = (ctx.stats.httpStatus[status] ?? 0) + 1;
}

function retryAfterMs(response: Response): number {
  const seconds = Number(response.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000;
}

/** POST /images/jobs until a 202 or a 4xx (or the deadline). */
export async function createJob(ctx: ClientContext, record: JobRecord): Promise<void> {
  const { plan } = record;
  const headers = {
    apikey: ctx.apiKey,
    "x-user-id": plan.userId,
    "idempotency-key": plan.idempotencyKey,
  };
  for (let failures = 0;;) {
    if (Date.now() > ctx.deadline) {
      record.gaveUp = "create";
      return;
    }
    const { body, headers: contentHeaders } = createRequest(plan);
    record.createAttempts++;
    ctx.stats.createRequests++;
    let response: Response;
    ctx.inFlightCreates.set(plan.n, Date.now());
    try {
      response = await request(ctx, `${ctx.api}/jobs`, {
        method: "POST",
        body,
        headers: { ...headers, ...contentHeaders },
      });
    } catch {
      ctx.stats.networkErrors++;
      await sleep(backoff(failures++));
      continue;
    } finally {
      ctx.inFlightCreates.delete(plan.n);
    }
    if (response.status === 202) {
      const answer = await response.json();
      record.id = answer.id;
      if (response.headers.get("idempotent-replayed") === "true") ctx.stats.replayed++;
      return;
    }
    countStatus(ctx, response.status);
    if (response.status === 429) {
      ctx.stats.rateLimited++;
      await sleep(retryAfterMs(response) + Math.random() * 500);
      continue;
    }
    if (response.status >= 500) {
      await sleep(backoff(failures++));
      continue;
    }
    const answer = await response.json().catch(() => ({}));
    record.rejected = { status: response.status, code: String(answer?.error?.code ?? "unknown") };
    return;
  }
}

/** GET /images/jobs/:id until the job is terminal (or the deadline); then fetches its image. */
export async function followJob(ctx: ClientContext, record: JobRecord): Promise<void> {
  const headers = { apikey: ctx.apiKey, "x-user-id": record.plan.userId };
  let interval = ctx.pollMs.first;
  for (;;) {
    await sleep(interval * (0.75 + Math.random() / 2));
    interval = Math.min(ctx.pollMs.max, interval * 1.5);
    if (Date.now() > ctx.deadline) {
      record.gaveUp = "follow";
      return;
    }
    ctx.stats.statusReads++;
    let response: Response;
    try {
      response = await request(ctx, `${ctx.api}/jobs/${record.id}`, { headers });
    } catch {
      ctx.stats.networkErrors++;
      continue;
    }
    if (!response.ok) {
      countStatus(ctx, response.status);
      await response.body?.cancel();
      continue;
    }
    const job = await response.json();
    if (!(TERMINAL as readonly string[]).includes(job.status)) continue;
    record.final = { status: job.status, errorCode: job.error?.code ?? null };
    if (job.status === "succeeded") record.imageServed = await downloadImage(ctx, job.image?.url);
    return;
  }
}

/** Downloads a stored image through its signed URL (retrying network errors and 5xx). */
async function downloadImage(ctx: ClientContext, url: string | undefined): Promise<boolean> {
  if (!url) return false;
  for (let attempt = 0; Date.now() < ctx.deadline; attempt++) {
    ctx.stats.imageDownloads++;
    try {
      const response = await request(ctx, url);
      if (response.ok) return (await response.arrayBuffer()).byteLength > 0;
      await response.body?.cancel();
      countStatus(ctx, response.status);
      if (response.status < 500) break;
    } catch {
      ctx.stats.networkErrors++;
    }
    await sleep(backoff(attempt));
  }
  ctx.stats.imageDownloadFailures++;
  return false;
}

/**
 * One user: `concurrency` jobs in flight at a time (create, then follow), with a random pause of
 * up to `thinkMs` before each create so the work is spread over the run.
 */
export async function runUser(
  ctx: ClientContext,
  records: JobRecord[],
  options: { concurrency: number; thinkMs: number; startDelayMs: number },
  onCreated: () => void,
): Promise<void> {
  await sleep(options.startDelayMs);
  let next = 0;
  const lane = async () => {
    while (next < records.length) {
      const record = records[next++];
      await sleep(Math.random() * options.thinkMs);
      await createJob(ctx, record);
      if (!record.id) continue;
      onCreated();
      await followJob(ctx, record);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
}
