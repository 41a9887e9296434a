/**
 * A small typed client for the image jobs API, for TypeScript frontends. No dependencies: only
 * `fetch`, `FormData` and `setTimeout`, so the same file works in browsers, Deno, Node 18+ and
 * React Native.
 *
 * ```ts
 * const images = createImagesClient({
 *   baseUrl: "https://<project-ref>.supabase.co/functions/v1/images", // or http://localhost:8000/images
 *   getAccessToken: async () => (await supabase.auth.getSession()).data.session?.access_token,
 * });
 * const { id } = await images.createJob({ prompt: "Make it snow", files: { input_image: file } });
 * const job = await images.waitForJob(id, { onUpdate: (j) => console.log(j.status) });
 * if (job.status === "succeeded") img.src = job.image!.url;
 * ```
 *
 * The types are written by hand to match shared/api/job-schemas.ts; tests/images-client.test.ts
 * compares them with the server's live OpenAPI document so they cannot drift silently.
 *
 * @module
 */

// ------------------------------------------------------------------ types (mirror job-schemas.ts)

export const JOB_STATUSES = ["queued", "submitting", "running", "succeeded", "failed", "moderated"] as const;
/** queued → submitting → running → succeeded | failed | moderated */
export type JobStatus = typeof JOB_STATUSES[number];
export const TERMINAL_STATUSES = ["succeeded", "failed", "moderated"] as const;
export type TerminalStatus = typeof TERMINAL_STATUSES[number];

export const MODEL_IDS = ["flux-kontext-pro", "flux-kontext-max", "flux-bagel-alpha"] as const;
export type ModelId = typeof MODEL_IDS[number];

export const OUTPUT_FORMATS = ["jpeg", "png"] as const;
export type OutputFormat = typeof OUTPUT_FORMATS[number];

export const IMAGE_SLOTS = ["input_image", "input_image_2", "input_image_3", "input_image_4"] as const;
export type ImageSlot = typeof IMAGE_SLOTS[number];

export const INPUT_KINDS = ["upload", "url", "job"] as const;
export type InputKind = typeof INPUT_KINDS[number];

/** The body of POST /jobs (the `CreateJobRequest` schema). Images here are base64 or https URLs. */
export interface CreateJobInput {
  /** Default flux-kontext-pro. flux-bagel-alpha only edits (needs input_image or input_job_id). */
  model?: ModelId;
  /** 1–2048 characters after trimming. */
  prompt: string;
  seed?: number;
  /** Kontext only: "W:H" between 3:7 and 7:3. */
  aspect_ratio?: string;
  /** Default jpeg. */
  output_format?: OutputFormat;
  /** Kontext only. */
  prompt_upsampling?: boolean;
  /** 0–6, default 2; Kontext edits allow at most 2. */
  safety_tolerance?: number;
  input_image?: string;
  input_image_2?: string;
  input_image_3?: string;
  input_image_4?: string;
  /** Use the stored output of one of your succeeded jobs as input_image (iterative editing). */
  input_job_id?: string;
  input_job_id_2?: string;
  input_job_id_3?: string;
  input_job_id_4?: string;
  /** flux-bagel-alpha only: 1–150. */
  steps?: number;
  /** flux-bagel-alpha only: 0.1–99. */
  guidance?: number;
}

/** `{code, message, details}`; validation errors' details are `[{field, message}]`. */
export interface ApiErrorInfo {
  code: string;
  message: string;
  details?: unknown;
}

export interface ErrorResponse {
  error: ApiErrorInfo;
}

/** One problem with one field, as validation errors list them in `details`. */
export interface FieldError {
  field: string;
  message: string;
}

export interface JobInputInfo {
  slot: string;
  kind: InputKind;
  /** For kind job: the job whose output was used. */
  job_id?: string;
  content_type?: string;
  bytes?: number;
  url?: string;
}

export interface JobProviderInfo {
  /** BFL's last status, verbatim (e.g. "Pending", "Ready", "Content Moderated"). */
  status: string | null;
  /** Credits, as BFL reported them. */
  cost: number | null;
  input_mp: number | null;
  output_mp: number | null;
}

export interface JobImage {
  /** Download URL of the stored copy (time-limited). */
  url: string;
  content_type: string;
  bytes: number;
  expires_at: string;
}

/** A job as its owner sees it (the `Job` schema). */
export interface Job {
  id: string;
  model: ModelId;
  status: JobStatus;
  prompt: string;
  /** Validated parameters, without images. */
  params: Record<string, unknown>;
  inputs: JobInputInfo[];
  error: ApiErrorInfo | null;
  provider: JobProviderInfo;
  image: JobImage | null;
  parent_job_id: string | null;
  created_at: string;
  updated_at: string;
  submitted_at: string | null;
  finished_at: string | null;
  links: { self: string };
}

/** 202 answer of POST /jobs (the `CreateJobAccepted` schema). */
export interface CreateJobAccepted {
  id: string;
  status: JobStatus;
  /** Where to follow the job. */
  url: string;
  job: Job;
}

/** GET /jobs (the `JobList` schema): newest first. */
export interface JobList {
  data: Job[];
  next_cursor: string | null;
}

/** GET /jobs/:id/lineage (the `JobLineage` schema): the chain of edits, oldest first. */
export interface JobLineage {
  data: Job[];
}

// ------------------------------------------------------------------ client

/** A file for multipart upload: a Blob/File (browsers, Deno), or React Native's `{uri, name, type}`. */
export type UploadFile = Blob | { uri: string; name: string; type: string };

export interface CreateJobParams extends CreateJobInput {
  /** Image files, sent as multipart/form-data (no base64 on the device). */
  files?: Partial<Record<ImageSlot, UploadFile>>;
  /** Sent as Idempotency-Key: repeating the same key and body returns the same job. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** The 202 answer, plus whether the server replayed an earlier request with the same key. */
export interface CreateJobResult extends CreateJobAccepted {
  replayed: boolean;
}

export interface ImagesClientOptions {
  /** The API's base, ending in /images: http://localhost:8000/images, https://<ref>.supabase.co/functions/v1/images. */
  baseUrl: string;
  /** The signed-in user's access token (e.g. supabase-js `session.access_token`), sent as a Bearer token. */
  getAccessToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Extra headers on every call (e.g. a server's `apikey` and `x-user-id`). */
  headers?: Record<string, string>;
}

export interface WaitForJobOptions {
  /** Pause between reads; default 1000 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
  /** Called with every read of the job, the final one included. */
  onUpdate?: (job: Job) => void;
  /** Give up (ImagesApiError code `wait_timeout`) after this long; default: never. */
  timeoutMs?: number;
}

export interface ImagesClient {
  readonly baseUrl: string;
  createJob(input: CreateJobParams): Promise<CreateJobResult>;
  getJob(id: string, options?: { signal?: AbortSignal }): Promise<Job>;
  listJobs(options?: { limit?: number; cursor?: string | null; signal?: AbortSignal }): Promise<JobList>;
  lineage(id: string, options?: { signal?: AbortSignal }): Promise<JobLineage>;
  /** Reads the job until it is succeeded, failed or moderated, and returns it (it does not throw for failed jobs). */
  waitForJob(id: string, options?: WaitForJobOptions): Promise<Job>;
}

/** An error answer of the API (`{error: {code, message, details}}`), or a network failure (status 0). */
export class ImagesApiError extends Error {
  /** HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  /** Machine-readable: invalid_request, job_not_found, network_error, ... */
  readonly code: string;
  /** As the API sent it: `[{field, message}]` for validation errors, or an object. */
  readonly details: unknown;
  /** Seconds, from Retry-After (429). */
  readonly retryAfter?: number;

  constructor(status: number, code: string, message: string, details?: unknown, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ImagesApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = options.retryAfter;
  }

  /** The field errors in `details` (validation errors, or BFL's `details.fields` on a 422). */
  get fieldErrors(): FieldError[] {
    const list = Array.isArray(this.details)
      ? this.details
      : (this.details as { fields?: unknown } | undefined)?.fields;
    return Array.isArray(list)
      ? list.filter((d): d is FieldError => typeof d?.field === "string" && typeof d?.message === "string")
      : [];
  }
}

export function isTerminal(status: JobStatus): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

function abortError(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  const error = new Error("The operation was aborted");
  error.name = "AbortError";
  return error;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function errorFrom(response: Response): Promise<ImagesApiError> {
  const text = await response.text().catch(() => "");
  const retry = Number(response.headers.get("retry-after"));
  const options = { retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined };
  try {
    const body = JSON.parse(text) as Partial<ErrorResponse>;
    if (body?.error && typeof body.error.message === "string") {
      return new ImagesApiError(response.status, String(body.error.code ?? "http_error"), body.error.message, body.error.details, options);
    }
  } catch {
    // not JSON: a proxy's or gateway's page
  }
  const snippet = text.replace(/\s+/g, " ").trim().slice(0, 200);
  const message = `HTTP ${response.status} ${response.statusText}`.trim() + (snippet ? `: ${snippet}` : "");
  return new ImagesApiError(response.status, "http_error", message, undefined, options);
}

export function createImagesClient(options: ImagesClientOptions): ImagesClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

  async function call<T>(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {}) {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers, ...init.headers };
    const token = await options.getAccessToken?.();
    if (token) headers.authorization = `Bearer ${token}`;
    const url = `${baseUrl}${path}`;
    let response: Response;
    try {
      response = await fetchImpl(url, { method, headers, body: init.body, signal: init.signal });
    } catch (error) {
      if (init.signal?.aborted || (error as Error)?.name === "AbortError") throw error;
      throw new ImagesApiError(0, "network_error", `Cannot reach ${url}: ${(error as Error)?.message ?? error}`, undefined, { cause: error });
    }
    if (!response.ok) throw await errorFrom(response);
    return { body: (await response.json()) as T, response };
  }

  const jobPath = (id: string) => `/jobs/${encodeURIComponent(id)}`;

  const client: ImagesClient = {
    baseUrl,

    async createJob(input) {
      const { files, idempotencyKey, signal, ...fields } = input;
      const headers: Record<string, string> = {};
      if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
      let body: BodyInit;
      const fileEntries = Object.entries(files ?? {}).filter(([, file]) => file != null);
      if (fileEntries.length > 0) {
        const form = new FormData();
        for (const [name, value] of Object.entries(fields)) {
          if (value !== undefined && value !== null) form.append(name, String(value));
        }
        for (const [slot, file] of fileEntries) {
          if (typeof Blob !== "undefined" && file instanceof Blob) {
            form.append(slot, file, (file as File).name || slot);
          } else {
            // React Native's FormData reads {uri, name, type} objects; it has no Blob parts.
            form.append(slot, file as unknown as Blob);
          }
        }
        body = form;
      } else {
        headers["content-type"] = "application/json";
        body = JSON.stringify(fields);
      }
      const { body: accepted, response } = await call<CreateJobAccepted>("POST", "/jobs", { body, headers, signal });
      return { ...accepted, replayed: response.headers.get("idempotent-replayed") === "true" };
    },

    async getJob(id, opts = {}) {
      return (await call<Job>("GET", jobPath(id), { signal: opts.signal })).body;
    },

    async listJobs(opts = {}) {
      const query = new URLSearchParams();
      if (opts.limit !== undefined) query.set("limit", String(opts.limit));
      if (opts.cursor) query.set("cursor", opts.cursor);
      const suffix = query.toString() ? `?${query}` : "";
      return (await call<JobList>("GET", `/jobs${suffix}`, { signal: opts.signal })).body;
    },

    async lineage(id, opts = {}) {
      return (await call<JobLineage>("GET", `${jobPath(id)}/lineage`, { signal: opts.signal })).body;
    },

    async waitForJob(id, opts = {}) {
      const interval = opts.intervalMs ?? 1000;
      const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
      while (true) {
        const job = await client.getJob(id, { signal: opts.signal });
        opts.onUpdate?.(job);
        if (isTerminal(job.status)) return job;
        if (Date.now() + interval > deadline) {
          throw new ImagesApiError(0, "wait_timeout", `Job ${id} is still ${job.status} after ${opts.timeoutMs} ms`);
        }
        await sleep(interval, opts.signal);
      }
    },
  };
  return client;
}
