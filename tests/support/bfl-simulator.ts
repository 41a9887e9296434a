/**
 * BFL API simulator: a local stand-in for Black Forest Labs' hosted FLUX API (api.bfl.ai),
 * which cannot be reached from tests. It is a real HTTP server that follows the documented
 * wire contract (see /work/shared/reference/bfl-api.md §2–4 and the flux-bagel-alpha notes):
 *
 * - api host (`apiUrl`): `POST /v1/flux-kontext-pro|flux-kontext-max|flux-bagel-alpha`, `x-key`
 *   auth (403), pydantic-style 422 validation, 24-task / 6-task (kontext-max) concurrency 429s.
 *   `GET /v1/get_result` here always answers "Task not found", like a cluster that did not take
 *   the task, so code that rebuilds the polling URL instead of using `polling_url` is caught.
 * - poll host (`pollOrigin`, its own port): `GET /v1/get_result?id=` with the ResultResponse shape.
 * - delivery host (`deliveryOrigin`, a third port): signed `result.sample` URLs that expire
 *   `sampleTtlMs` after the task became Ready (403 Azure-style "AuthenticationFailed"), no CORS.
 * - webhooks: the get_result object POSTed to `webhook_url` on terminal states, with
 *   `X-Webhook-Secret` echoed verbatim.
 *
 * Limits (where this is NOT the real service):
 * - Parts of the contract are undocumented upstream and are guesses here: webhook body shape and
 *   (absent) retries, 402/429 bodies, `details` shapes, `result.start_time/end_time/duration`,
 *   whether data: URI prefixes are accepted. Submits always get the polling variant of the
 *   response (never `AsyncWebhookResponse` without `polling_url`).
 * - Validation is stricter than pydantic's lax mode: no coercion of "12" or true to integers,
 *   of "true" to booleans. No prompt token limit, no 20 MB / 20 MP input limit; image URLs are
 *   not fetched and base64 input is only checked to decode, not to be an image.
 * - Status is a pure function of time (Pending until ready-after, then the terminal outcome);
 *   results never expire from get_result. Every terminal outcome, moderated ones included,
 *   becomes final at the same moment. Output images are tiny (`imageSize`) whatever the ratio.
 * - Concurrency limits are per simulator (one account); there is no /v1/credits balance.
 * - Only the three Kontext-era models; other paths are 404.
 */
import { createHmac } from "node:crypto";
import { makeJpeg, makePng } from "./test-images.ts";

export const SIMULATED_MODELS = [
  "flux-kontext-pro",
  "flux-kontext-max",
  "flux-bagel-alpha",
] as const;
export type SimulatedModel = (typeof SIMULATED_MODELS)[number];

export interface SimulatorOptions {
  /** Accepted `x-key`, default "sim-key". */
  key?: string;
  /** Pending until this many ms after submit, default 300. */
  readyAfterMs?: number;
  /** `result.sample` stays valid this long after the task became Ready, default 10 min (as documented). */
  sampleTtlMs?: number;
  /** Api port, default 0 (random). Poll and delivery hosts always get their own random ports. */
  port?: number;
  /** Width = height of generated result images, default 64. */
  imageSize?: number;
  /** Credits per submit by model name; defaults: pro 4, max 8, bagel 4. */
  cost?: { [model: string]: number };
}

export interface Submission {
  id: string;
  model: string;
  /** The parsed JSON body exactly as received. */
  body: Record<string, unknown>;
  receivedAt: number;
  webhookUrl?: string;
  /** Credits billed for this submit (the `cost` in the response). */
  cost: number;
}

export type TerminalStatus =
  | "Ready"
  | "Request Moderated"
  | "Content Moderated"
  | "Error"
  | "Task not found";

export interface Faults {
  /** Next `times` (default 1) authenticated submits answer this status instead. */
  submitStatus?: { status: 402 | 422 | 429 | 500 | 502 | 503; times?: number };
  /** Close the socket without an answer; with `afterAccept` the task is created and billed first. */
  submitDropConnection?: { times?: number; afterAccept?: boolean };
  /** Delay before answering submits. */
  submitDelayMs?: number;
  /** Next `times` (default 1) authenticated polls answer this HTTP error. */
  pollStatus?: { status: 500 | 502 | 503; times?: number };
  pollDelayMs?: number;
  /** Next `times` (default 1) accepted tasks end this way instead of Ready. */
  outcome?: { status: Exclude<TerminalStatus, "Ready">; times?: number };
  /** Each result's first download answers 500; later downloads succeed. */
  sampleFailOnce?: boolean;
  /** drop = never send; duplicate = send twice. Read when the task becomes terminal. */
  webhook?: "drop" | "duplicate" | "normal";
  webhookDelayMs?: number;
}

export interface WebhookAttempt {
  at: number;
  /** HTTP status answered by the receiver, when it answered. */
  status?: number;
  /** Why the POST failed (connection refused, aborted, …). */
  error?: string;
}

export interface TaskView {
  id: string;
  model: string;
  /** The status a poll would report right now. */
  status: string;
  progress: number | null;
  result: Record<string, unknown> | null;
  details: Record<string, unknown> | null;
  /** The outcome the task has or will have once it stops being Pending. */
  outcome: TerminalStatus;
  submittedAt: number;
  readyAt: number;
  downloads: number;
  webhookUrl?: string;
  webhookAttempts: WebhookAttempt[];
}

export interface SimulatorCounts {
  submitRequests: number;
  accepted: number;
  /** get_result requests on the poll host. */
  polls: number;
  /** get_result requests on the api host (a rebuilt polling URL); always "Task not found". */
  misroutedPolls: number;
  downloads: number;
  webhooksSent: number;
  /** Submits not answered 200, by HTTP status ("403", "422", "429", …) or "dropped" (an
   *  afterAccept drop is also counted in `accepted`). */
  rejected: Record<string, number>;
}

export interface BflSimulator {
  /** Submit host, e.g. http://127.0.0.1:PORT (use as BFL_API_URL; paths are /v1/<model>). */
  apiUrl: string;
  /** Regional host that `polling_url` points at. */
  pollOrigin: string;
  /** Host of `result.sample` URLs. */
  deliveryOrigin: string;
  key: string;
  /** Every accepted submit, in order. */
  submissions: Submission[];
  counts: SimulatorCounts;
  /** Mutable: tests set fields directly. */
  faults: Faults;
  activeTasks(model?: string): number;
  task(id: string): TaskView | undefined;
  /** Clears faults, counters, submissions and tasks (cancelling their timers and webhooks). */
  reset(): void;
  /** Stops all three servers, timers and in-flight webhooks. */
  close(): Promise<void>;
}

interface Task {
  id: string;
  model: SimulatedModel;
  prompt: string;
  seed: number;
  format: "jpeg" | "png";
  submittedAt: number;
  readyAt: number;
  outcome: TerminalStatus;
  webhookUrl?: string;
  webhookSecret?: string;
  webhookAttempts: WebhookAttempt[];
  downloads: number;
  image?: Uint8Array;
  timer?: number;
}

interface Issue {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

const DEFAULT_COST: Record<SimulatedModel, number> = {
  "flux-kontext-pro": 4,
  "flux-kontext-max": 8,
  "flux-bagel-alpha": 4,
};
const TOTAL_LIMIT = 24;
const MAX_MODEL_LIMIT = 6;
const OUTPUT_MP = 1.05; // Kontext outputs ~1 MP (1024x1024 = 1.048576)
const MODERATION_REASONS: Record<string, string[]> = {
  "Request Moderated": ["Protected Content"],
  "Content Moderated": ["NSFW"],
};

export function startBflSimulator(options: SimulatorOptions = {}): Promise<BflSimulator> {
  const key = options.key ?? "sim-key";
  const readyAfterMs = options.readyAfterMs ?? 300;
  const sampleTtlMs = options.sampleTtlMs ?? 600_000;
  const imageSize = options.imageSize ?? 64;
  const cost: Record<string, number> = { ...DEFAULT_COST, ...options.cost };
  // Signs sample URLs so tampering with `se` (expiry) is detected, like an Azure SAS.
  const signingKey = crypto.getRandomValues(new Uint8Array(32));

  const tasks = new Map<string, Task>();
  const submissions: Submission[] = [];
  const counts: SimulatorCounts = {
    submitRequests: 0,
    accepted: 0,
    polls: 0,
    misroutedPolls: 0,
    downloads: 0,
    webhooksSent: 0,
    rejected: {},
  };
  const faults: Faults = {};
  const sleeps = new Set<{ timer: number; resolve: () => void }>();
  const webhookFetches = new Map<Promise<void>, AbortController>();
  let closed = false;
  let closing: Promise<void> | undefined;

  /** Timer-backed delay that close() can cut short, so no timer outlives the simulator. */
  function sleep(ms: number | undefined): Promise<void> {
    if (!ms || ms <= 0 || closed) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { timer: 0, resolve };
      entry.timer = setTimeout(() => {
        sleeps.delete(entry);
        resolve();
      }, ms);
      sleeps.add(entry);
    });
  }

  /** Consumes one use of a counted fault; removes it from `faults` when used up. */
  function takeFault<K extends "submitStatus" | "submitDropConnection" | "pollStatus" | "outcome">(
    name: K,
  ): Faults[K] | undefined {
    const fault = faults[name];
    if (!fault) return undefined;
    const left = fault.times ?? 1;
    if (left <= 0) {
      delete faults[name];
      return undefined;
    }
    fault.times = left - 1;
    if (fault.times === 0) delete faults[name];
    return fault;
  }

  function reject(reason: string): void {
    counts.rejected[reason] = (counts.rejected[reason] ?? 0) + 1;
  }

  function isActive(task: Task, now: number): boolean {
    return now < task.readyAt;
  }

  function activeTasks(model?: string): number {
    const now = Date.now();
    let n = 0;
    for (const task of tasks.values()) {
      if (isActive(task, now) && (model === undefined || task.model === model)) n++;
    }
    return n;
  }

  function sign(id: string, format: string, expiry: string): string {
    return createHmac("sha256", signingKey).update(`${id}/${format}/${expiry}`).digest("hex");
  }

  function sampleUrl(task: Task): string {
    const expiry = String(task.readyAt + sampleTtlMs);
    const query = `se=${expiry}&sig=${sign(task.id, task.format, expiry)}`;
    return `${deliveryOrigin}/results/${task.id}/sample.${task.format}?${query}`;
  }

  /** The get_result object (also the webhook body) for a task at time `now`. */
  function resultBody(id: string, task: Task | undefined, now: number): Record<string, unknown> {
    // Spreading `body` first keeps the documented key order; later keys only replace values.
    const body = {
      id,
      status: "Task not found",
      result: null,
      progress: null,
      details: null,
      preview: null,
    };
    if (!task) return body;
    if (isActive(task, now)) {
      const span = task.readyAt - task.submittedAt;
      const progress = Math.min(0.99, Math.round(((now - task.submittedAt) / span) * 100) / 100);
      return { ...body, status: "Pending", progress };
    }
    switch (task.outcome) {
      case "Ready":
        return {
          ...body,
          status: "Ready",
          result: {
            sample: sampleUrl(task),
            prompt: task.prompt,
            seed: task.seed,
            start_time: task.submittedAt / 1000,
            end_time: task.readyAt / 1000,
            duration: (task.readyAt - task.submittedAt) / 1000,
          },
        };
      case "Request Moderated":
      case "Content Moderated":
        return {
          ...body,
          status: task.outcome,
          details: { "Moderation Reasons": MODERATION_REASONS[task.outcome] },
        };
      case "Error":
        return { ...body, status: "Error", details: { error: "Simulated generation failure." } };
      case "Task not found":
        return body;
    }
  }

  function view(task: Task): TaskView {
    const body = resultBody(task.id, task, Date.now());
    return {
      id: task.id,
      model: task.model,
      status: body.status as string,
      progress: body.progress as number | null,
      result: body.result as Record<string, unknown> | null,
      details: body.details as Record<string, unknown> | null,
      outcome: task.outcome,
      submittedAt: task.submittedAt,
      readyAt: task.readyAt,
      downloads: task.downloads,
      webhookUrl: task.webhookUrl,
      webhookAttempts: task.webhookAttempts,
    };
  }

  // ---------------------------------------------------------------- webhooks

  function scheduleWebhook(task: Task): void {
    task.timer = setTimeout(() => {
      task.timer = undefined;
      void fireWebhook(task);
    }, Math.max(0, task.readyAt - Date.now()));
  }

  async function fireWebhook(task: Task): Promise<void> {
    // A task that vanished ("Task not found") has nothing to report.
    const url = task.webhookUrl;
    if (task.outcome === "Task not found" || !url) return;
    const mode = faults.webhook ?? "normal";
    if (mode === "drop") return;
    await sleep(faults.webhookDelayMs);
    if (closed || tasks.get(task.id) !== task) return;
    const body = JSON.stringify(resultBody(task.id, task, Math.max(Date.now(), task.readyAt)));
    for (let i = 0; i < (mode === "duplicate" ? 2 : 1); i++) await postWebhook(task, url, body);
  }

  function postWebhook(task: Task, url: string, body: string): Promise<void> {
    if (closed) return Promise.resolve();
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (task.webhookSecret !== undefined) headers["X-Webhook-Secret"] = task.webhookSecret;
    const controller = new AbortController();
    const attempt: WebhookAttempt = { at: Date.now() };
    task.webhookAttempts.push(attempt);
    counts.webhooksSent++;
    const sending = fetch(url, { method: "POST", headers, body, signal: controller.signal })
      .then(async (res) => {
        attempt.status = res.status;
        await res.body?.cancel(); // release the connection; the answer body is not used
      })
      .catch((error: unknown) => {
        attempt.error = error instanceof Error ? error.message : String(error);
      })
      .finally(() => webhookFetches.delete(sending));
    webhookFetches.set(sending, controller);
    return sending;
  }

  function cancelBackgroundWork(): void {
    for (const task of tasks.values()) {
      if (task.timer !== undefined) clearTimeout(task.timer);
      task.timer = undefined;
    }
    for (const entry of sleeps) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    sleeps.clear();
    for (const controller of webhookFetches.values()) controller.abort();
  }

  // ---------------------------------------------------------------- api host

  async function handleApi(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const model = SIMULATED_MODELS.find((m) => path === `/v1/${m}`);
    if (model) {
      if (req.method !== "POST") return json(405, { detail: "Method Not Allowed" });
      return await handleSubmit(req, model);
    }
    if (path === "/v1/get_result" && req.method === "GET") {
      // Another cluster: it does not know tasks submitted elsewhere (see §3.5 of the reference).
      counts.misroutedPolls++;
      if (!authorized(req)) return forbidden();
      const id = new URL(req.url).searchParams.get("id");
      if (id === null) return missingQueryId();
      return json(200, resultBody(id, undefined, Date.now()));
    }
    return json(404, { detail: "Not Found" });
  }

  async function handleSubmit(req: Request, model: SimulatedModel): Promise<Response> {
    counts.submitRequests++;
    const text = await req.text();
    await sleep(faults.submitDelayMs);
    if (!authorized(req)) {
      reject("403");
      return forbidden();
    }

    const injected = takeFault("submitStatus");
    if (injected) {
      reject(String(injected.status));
      return injectedSubmitError(injected.status);
    }
    const drop = faults.submitDropConnection;
    if (drop && !drop.afterAccept && takeFault("submitDropConnection")) {
      reject("dropped");
      return dropConnection();
    }

    const parsed = parseBody(text);
    if ("issues" in parsed) {
      reject("422");
      return json(422, { detail: parsed.issues });
    }
    const body = parsed.body;
    const issues = model === "flux-bagel-alpha" ? validateBagel(body) : validateKontext(body);
    if (issues.length > 0) {
      reject("422");
      return json(422, { detail: issues });
    }

    const limit = activeTasks() >= TOTAL_LIMIT
      ? TOTAL_LIMIT
      : model === "flux-kontext-max" && activeTasks(model) >= MAX_MODEL_LIMIT
      ? MAX_MODEL_LIMIT
      : undefined;
    if (limit !== undefined) {
      reject("429");
      return tooManyRequests(limit);
    }

    const task = createTask(model, body);
    const price = cost[model] ?? 0;
    submissions.push({
      id: task.id,
      model,
      body,
      receivedAt: task.submittedAt,
      webhookUrl: task.webhookUrl,
      cost: price,
    });
    counts.accepted++;

    if (drop?.afterAccept && takeFault("submitDropConnection")) {
      reject("dropped");
      return dropConnection();
    }

    const images = ["input_image", "input_image_2", "input_image_3", "input_image_4"]
      .filter((field) => typeof body[field] === "string").length;
    return json(200, {
      id: task.id,
      polling_url: `${pollOrigin}/v1/get_result?id=${task.id}`,
      cost: price,
      input_mp: Math.round(images * OUTPUT_MP * 100) / 100,
      output_mp: OUTPUT_MP,
    });
  }

  function createTask(model: SimulatedModel, body: Record<string, unknown>): Task {
    const prompt = body.prompt as string;
    const directives = parseDirectives(prompt);
    const outcome = directives.outcome ?? takeFault("outcome")?.status ?? "Ready";
    const now = Date.now();
    const task: Task = {
      id: crypto.randomUUID(),
      model,
      prompt,
      seed: typeof body.seed === "number" ? body.seed : Math.floor(Math.random() * 2 ** 31),
      format: body.output_format === "png" ? "png" : "jpeg",
      submittedAt: now,
      readyAt: now + (directives.readyAfterMs ?? readyAfterMs),
      outcome,
      webhookUrl: typeof body.webhook_url === "string" ? body.webhook_url : undefined,
      webhookSecret: typeof body.webhook_secret === "string" ? body.webhook_secret : undefined,
      webhookAttempts: [],
      downloads: 0,
    };
    tasks.set(task.id, task);
    if (task.webhookUrl) scheduleWebhook(task);
    return task;
  }

  // ---------------------------------------------------------------- poll host

  async function handlePoll(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname !== "/v1/get_result") return json(404, { detail: "Not Found" });
    if (req.method !== "GET") return json(405, { detail: "Method Not Allowed" });
    counts.polls++;
    await sleep(faults.pollDelayMs);
    if (!authorized(req)) return forbidden();
    const injected = takeFault("pollStatus");
    if (injected) return injectedServerError(injected.status);
    const id = url.searchParams.get("id");
    if (id === null) return missingQueryId();
    return json(200, resultBody(id, tasks.get(id), Date.now()));
  }

  // ---------------------------------------------------------------- delivery host

  function handleDelivery(req: Request): Response {
    const url = new URL(req.url);
    const match = /^\/results\/([^/]+)\/sample\.(jpeg|png)$/.exec(url.pathname);
    if (!match || (req.method !== "GET" && req.method !== "HEAD")) {
      return blobError(404, "ResourceNotFound", "The specified resource does not exist.");
    }
    counts.downloads++;
    const [, id, format] = match;
    const task = tasks.get(id);
    const now = Date.now();
    if (!task || task.format !== format || task.outcome !== "Ready" || isActive(task, now)) {
      return blobError(404, "BlobNotFound", "The specified blob does not exist.");
    }
    const expiry = url.searchParams.get("se") ?? "";
    const sig = url.searchParams.get("sig") ?? "";
    if (sig !== sign(id, format, expiry)) {
      return blobError(403, "AuthenticationFailed", authFailedMessage, "Signature did not match.");
    }
    if (!(now <= Number(expiry))) {
      const window = `Expiry [${new Date(Number(expiry)).toUTCString()}] - Current [${
        new Date(now).toUTCString()
      }]`;
      return blobError(
        403,
        "AuthenticationFailed",
        authFailedMessage,
        `Signature not valid in the specified time frame: ${window}`,
      );
    }
    task.downloads++;
    if (faults.sampleFailOnce && task.downloads === 1) {
      return blobError(
        500,
        "InternalError",
        "Server encountered an internal error. Please try again.",
      );
    }
    task.image ??= format === "png"
      ? makePng(imageSize, imageSize, task.seed)
      : makeJpeg(imageSize, imageSize, task.seed);
    return new Response(task.image, {
      status: 200,
      headers: { "content-type": `image/${format}`, "x-ms-blob-type": "BlockBlob" },
    });
  }

  // ---------------------------------------------------------------- servers

  function authorized(req: Request): boolean {
    return req.headers.get("x-key") === key;
  }

  const serve = (port: number, handler: (req: Request) => Response | Promise<Response>) =>
    Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
  const apiServer = serve(options.port ?? 0, handleApi);
  const pollServer = serve(0, handlePoll);
  const deliveryServer = serve(0, handleDelivery);
  const origin = (server: Deno.HttpServer<Deno.NetAddr>) => `http://127.0.0.1:${server.addr.port}`;
  const apiUrl = origin(apiServer);
  const pollOrigin = origin(pollServer);
  const deliveryOrigin = origin(deliveryServer);
  // Deno.serve listens synchronously; the Promise leaves room for async setup later.
  return Promise.resolve({
    apiUrl,
    pollOrigin,
    deliveryOrigin,
    key,
    submissions,
    counts,
    faults,
    activeTasks,
    task(id: string) {
      const task = tasks.get(id);
      return task ? view(task) : undefined;
    },
    reset() {
      cancelBackgroundWork();
      tasks.clear();
      submissions.length = 0;
      for (const name of Object.keys(faults) as (keyof Faults)[]) delete faults[name];
      Object.assign(counts, {
        submitRequests: 0,
        accepted: 0,
        polls: 0,
        misroutedPolls: 0,
        downloads: 0,
        webhooksSent: 0,
        rejected: {},
      });
    },
    close() {
      closing ??= (async () => {
        closed = true;
        cancelBackgroundWork();
        await Promise.allSettled([...webhookFetches.keys()]);
        await Promise.all([apiServer.shutdown(), pollServer.shutdown(), deliveryServer.shutdown()]);
      })();
      return closing;
    },
  });
}

// ------------------------------------------------------------------ responses

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function forbidden(): Response {
  return json(403, { detail: "Not authenticated - Invalid Authentication" });
}

function tooManyRequests(limit: number): Response {
  const detail = `You have exceeded your concurrency limit of ${limit} active tasks. ` +
    "Please retry once a previous task finishes.";
  return json(429, { detail }, { "retry-after": "1" });
}

function missingQueryId(): Response {
  return json(422, {
    detail: [{ type: "missing", loc: ["query", "id"], msg: "Field required", input: null }],
  });
}

function injectedSubmitError(status: 402 | 422 | 429 | 500 | 502 | 503): Response {
  switch (status) {
    case 402:
      return json(402, { detail: "Insufficient credits" });
    case 422:
      return json(422, {
        detail: [{
          type: "value_error",
          loc: ["body"],
          msg: "Value error, Simulated validation failure",
          input: null,
        }],
      });
    case 429:
      return tooManyRequests(TOTAL_LIMIT);
    default:
      return injectedServerError(status);
  }
}

/** 502 comes from the load balancer in front of the API, so it is HTML rather than JSON. */
function injectedServerError(status: 500 | 502 | 503): Response {
  if (status === 502) {
    return new Response(
      "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
      { status, headers: { "content-type": "text/html" } },
    );
  }
  return json(status, { detail: status === 500 ? "Internal Server Error" : "Service Unavailable" });
}

/**
 * Makes Deno.serve close the connection without sending a status line: a body stream that
 * errors before its first chunk aborts the response before the headers are flushed, so the
 * client sees "connection closed before message completed".
 */
function dropConnection(): Response {
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.error(new Error("Simulated dropped connection"));
      },
    }),
  );
}

const authFailedMessage =
  "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.";

/** Azure Blob Storage style XML error (historical BFL delivery was Azure blob SAS URLs). */
function blobError(status: number, code: string, message: string, detail?: string): Response {
  const requestId = crypto.randomUUID();
  const extra = detail ? `<AuthenticationErrorDetail>${detail}</AuthenticationErrorDetail>` : "";
  const xml = `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code>` +
    `<Message>${message}\nRequestId:${requestId}\nTime:${
      new Date().toISOString()
    }</Message>${extra}</Error>`;
  return new Response(xml, {
    status,
    headers: { "content-type": "application/xml", "x-ms-error-code": code },
  });
}

// ------------------------------------------------------------------ prompt directives

interface Directives {
  outcome?: Exclude<TerminalStatus, "Ready">;
  readyAfterMs?: number;
}

/** `[sim:...]` markers let end-to-end tests pick one job's outcome without shared state. */
function parseDirectives(prompt: string): Directives {
  const directives: Directives = {};
  if (prompt.includes("[sim:request-moderated]")) directives.outcome = "Request Moderated";
  if (prompt.includes("[sim:content-moderated]")) directives.outcome = "Content Moderated";
  if (prompt.includes("[sim:error]")) directives.outcome = "Error";
  if (prompt.includes("[sim:task-not-found]")) directives.outcome = "Task not found";
  const readyAfter = /\[sim:ready-after=(\d+)\]/.exec(prompt);
  if (readyAfter) directives.readyAfterMs = Number(readyAfter[1]);
  return directives;
}

// ------------------------------------------------------------------ validation (pydantic-like)

function parseBody(text: string): { body: Record<string, unknown> } | { issues: Issue[] } {
  if (text.trim() === "") {
    return { issues: [{ type: "missing", loc: ["body"], msg: "Field required", input: null }] };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const ctx = { error: error instanceof Error ? error.message : String(error) };
    return {
      issues: [{
        type: "json_invalid",
        loc: ["body", 0],
        msg: "JSON decode error",
        input: {},
        ctx,
      }],
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      issues: [{
        type: "model_attributes_type",
        loc: ["body"],
        msg: "Input should be a valid dictionary or object to extract fields from",
        input: value,
      }],
    };
  }
  return { body: value as Record<string, unknown> };
}

type Check = (value: unknown, loc: (string | number)[]) => Issue | undefined;

/** Runs each field's check; `required` fields must be present, optional ones may be null. */
function validate(
  body: Record<string, unknown>,
  fields: Record<string, { check: Check; required?: boolean; nullable?: boolean }>,
): Issue[] {
  const issues: Issue[] = [];
  for (const [field, rule] of Object.entries(fields)) {
    const loc = ["body", field];
    if (!(field in body)) {
      if (rule.required) issues.push({ type: "missing", loc, msg: "Field required", input: body });
      continue;
    }
    const value = body[field];
    if (value === null && rule.nullable) continue;
    const issue = rule.check(value, loc);
    if (issue) issues.push(issue);
  }
  return issues;
}

const stringCheck: Check = (value, loc) =>
  typeof value === "string"
    ? undefined
    : { type: "string_type", loc, msg: "Input should be a valid string", input: value };

function intCheck(min?: number, max?: number): Check {
  return (value, loc) => {
    if (typeof value !== "number") {
      return { type: "int_type", loc, msg: "Input should be a valid integer", input: value };
    }
    if (!Number.isInteger(value)) {
      return {
        type: "int_from_float",
        loc,
        msg: "Input should be a valid integer, got a number with a fractional part",
        input: value,
      };
    }
    return rangeCheck(value, loc, min, max);
  };
}

function numberCheck(min?: number, max?: number): Check {
  return (value, loc) => {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      return { type: "float_type", loc, msg: "Input should be a valid number", input: value };
    }
    return rangeCheck(value, loc, min, max);
  };
}

function rangeCheck(
  value: number,
  loc: (string | number)[],
  min?: number,
  max?: number,
): Issue | undefined {
  if (min !== undefined && value < min) {
    return {
      type: "greater_than_equal",
      loc,
      msg: `Input should be greater than or equal to ${min}`,
      input: value,
      ctx: { ge: min },
    };
  }
  if (max !== undefined && value > max) {
    return {
      type: "less_than_equal",
      loc,
      msg: `Input should be less than or equal to ${max}`,
      input: value,
      ctx: { le: max },
    };
  }
  return undefined;
}

const boolCheck: Check = (value, loc) =>
  typeof value === "boolean"
    ? undefined
    : { type: "bool_type", loc, msg: "Input should be a valid boolean", input: value };

const outputFormatCheck: Check = (value, loc) =>
  value === "jpeg" || value === "png" ? undefined : {
    type: "enum",
    loc,
    msg: "Input should be 'jpeg' or 'png'",
    input: value,
    ctx: { expected: "'jpeg' or 'png'" },
  };

const ASPECT_RATIO_PATTERN = /^(\d+):(\d+)$/;

/** "W:H" with W/H between 3:7 and 7:3 (the spec's "between 21:9 and 9:21"). */
const aspectRatioCheck: Check = (value, loc) => {
  const typeIssue = stringCheck(value, loc);
  if (typeIssue) return typeIssue;
  const match = ASPECT_RATIO_PATTERN.exec(value as string);
  if (!match) {
    return {
      type: "string_pattern_mismatch",
      loc,
      msg: "String should match pattern '^\\d+:\\d+$'",
      input: value,
      ctx: { pattern: "^\\d+:\\d+$" },
    };
  }
  const width = Number(match[1]);
  const height = Number(match[2]);
  if (width === 0 || height === 0 || 7 * width < 3 * height || 3 * width > 7 * height) {
    return {
      type: "value_error",
      loc,
      msg: "Value error, Aspect ratio must be between 21:9 and 9:21",
      input: value,
      ctx: { error: {} },
    };
  }
  return undefined;
};

/** `webhook_url`: pydantic `AnyHttpUrl` with max_length 2083. */
const webhookUrlCheck: Check = (value, loc) => {
  const typeIssue = stringCheck(value, loc);
  if (typeIssue) return typeIssue;
  const text = value as string;
  if (text.length < 1) {
    return {
      type: "string_too_short",
      loc,
      msg: "String should have at least 1 character",
      input: value,
      ctx: { min_length: 1 },
    };
  }
  if (text.length > 2083) {
    return {
      type: "string_too_long",
      loc,
      msg: "String should have at most 2083 characters",
      input: value,
      ctx: { max_length: 2083 },
    };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      type: "url_parsing",
      loc,
      msg: "Input should be a valid URL, relative URL without a base",
      input: value,
    };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return {
      type: "url_scheme",
      loc,
      msg: "URL scheme should be 'http' or 'https'",
      input: value,
      ctx: { expected_schemes: "'http' or 'https'" },
    };
  }
  return undefined;
};

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URI_PREFIX = /^data:image\/[a-z0-9.+-]+;base64,/i;

/** An http(s) URL (passed through, not fetched) or base64 that decodes (optional data: prefix). */
const inputImageCheck: Check = (value, loc) => {
  const typeIssue = stringCheck(value, loc);
  if (typeIssue) return typeIssue;
  const text = value as string;
  if (/^https?:\/\//i.test(text)) {
    try {
      new URL(text);
      return undefined;
    } catch {
      // fall through to the shared error below
    }
  } else {
    // Python's b64decode ignores line breaks but insists on padding (length % 4 == 0).
    const encoded = text.replace(DATA_URI_PREFIX, "").replace(/[\r\n ]/g, "");
    if (encoded.length > 0 && encoded.length % 4 === 0 && BASE64_PATTERN.test(encoded)) {
      return undefined;
    }
  }
  return {
    type: "value_error",
    loc,
    msg: "Value error, Input image must be a base64 encoded image or an http(s) URL",
    input: text.length > 100 ? `${text.slice(0, 100)}...` : text,
    ctx: { error: {} },
  };
};

function validateKontext(body: Record<string, unknown>): Issue[] {
  return validate(body, {
    prompt: { check: stringCheck, required: true },
    input_image: { check: inputImageCheck, nullable: true },
    input_image_2: { check: inputImageCheck, nullable: true },
    input_image_3: { check: inputImageCheck, nullable: true },
    input_image_4: { check: inputImageCheck, nullable: true },
    seed: { check: intCheck(), nullable: true },
    aspect_ratio: { check: aspectRatioCheck, nullable: true },
    output_format: { check: outputFormatCheck, nullable: true },
    webhook_url: { check: webhookUrlCheck, nullable: true },
    webhook_secret: { check: stringCheck, nullable: true },
    prompt_upsampling: { check: boolCheck },
    safety_tolerance: { check: intCheck(0, 6) },
  });
}

function validateBagel(body: Record<string, unknown>): Issue[] {
  return validate(body, {
    prompt: { check: stringCheck, required: true },
    input_image: { check: inputImageCheck, required: true },
    seed: { check: intCheck(), nullable: true },
    guidance: { check: numberCheck(0.1, 99), nullable: true },
    steps: { check: intCheck(1, 150), nullable: true },
    safety_tolerance: { check: intCheck(0, 6) },
    output_format: { check: outputFormatCheck, nullable: true },
    webhook_url: { check: webhookUrlCheck, nullable: true },
    webhook_secret: { check: stringCheck, nullable: true },
  });
}
