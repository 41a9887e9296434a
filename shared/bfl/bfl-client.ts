/**
 * Talks to Black Forest Labs' API: submit a task, poll its `polling_url`, download the result.
 * Every answer is turned into an outcome the job runner can act on without re-reading HTTP.
 *
 * Retry policy (after BFL's own SDK): a submit is safe to repeat only when BFL certainly did not
 * accept it — a 429 (concurrency limit) or a connection that failed before the request was sent.
 * Any other failure of a submit (5xx, timeout, dropped connection) has an unknown outcome: the task
 * may exist and be billed, so it is reported as `unknown` and never resubmitted here.
 *
 * @module
 */
import type { ModelId } from "../jobs/models.ts";
import { isTrustedProviderUrl } from "./trusted-urls.ts";

export interface BflClientOptions {
  apiKey: string;
  apiUrl: string;
  alphaApiUrl: string;
  trustedOrigins: string[];
  fetch?: typeof fetch;
  /** Per-request timeout for submits and polls. */
  timeoutMs?: number;
  /** Per-request timeout for downloading a result image. */
  downloadTimeoutMs?: number;
  /** Told about every call to BFL (metrics): how long it took and how it ended. */
  onCall?: (call: { operation: "submit" | "poll" | "download"; seconds: number; outcome: string }) => void;
}

/** One field error from BFL's 422 `{detail:[{loc,msg,type}]}`. */
export interface ProviderFieldError {
  field: string;
  message: string;
  type?: string;
}

export type SubmitOutcome =
  | { kind: "accepted"; id: string; pollingUrl: string; cost: number | null; inputMp: number | null; outputMp: number | null }
  /** BFL said no for good: 400/401/402/403/404/422. */
  | { kind: "rejected"; httpStatus: number; code: string; message: string; fields?: ProviderFieldError[] }
  /** BFL certainly did not take it: 429, or the connection never reached it. Try again later. */
  | { kind: "retry_later"; reason: string; retryAfterMs?: number }
  /** BFL may or may not have taken (and billed) it. */
  | { kind: "unknown"; message: string };

export type PollOutcome =
  | {
    kind: "status";
    status: string;
    sampleUrl?: string;
    progress: number | null;
    details: unknown;
  }
  /** The poll itself failed (network, 5xx, 429): nothing is known, poll again later. */
  | { kind: "transient"; message: string }
  /** The poll can never succeed (403: key revoked; 404; an untrusted URL). */
  | { kind: "fatal"; code: string; message: string };

export type DownloadOutcome =
  | { kind: "ok"; bytes: Uint8Array; contentType: string | null }
  /** The signed URL has expired or was refused (403/404/410): a fresh poll may give a new one. */
  | { kind: "expired"; message: string }
  | { kind: "transient"; message: string }
  | { kind: "fatal"; code: string; message: string };

function detailMessage(body: unknown, fallback: string): string {
  if (body && typeof body === "object") {
    const record = body as Record<string, unknown>;
    for (const key of ["detail", "message", "error"]) {
      if (typeof record[key] === "string") return record[key] as string;
    }
  }
  return fallback;
}

function fieldErrors(body: unknown): ProviderFieldError[] {
  const detail = (body as { detail?: unknown })?.detail;
  if (!Array.isArray(detail)) return [];
  return detail.map((item) => {
    const loc = Array.isArray(item?.loc) ? item.loc.filter((part: unknown) => part !== "body") : [];
    return { field: loc.join(".") || "body", message: String(item?.msg ?? "Invalid value"), type: item?.type };
  });
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Errors fetch raises when no byte of the request can have reached the server. */
function failedBeforeSending(error: unknown): boolean {
  const text = `${(error as Error)?.name} ${(error as Error)?.message} ${(error as { cause?: Error })?.cause?.message ?? ""}`;
  return /ConnectionRefused|Connection refused|dns error|failed to lookup|Name or service not known|No such host|os error 111|ENOTFOUND|ECONNREFUSED/i
    .test(text);
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const toNumber = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);

export class BflClient {
  readonly #options: Required<Omit<BflClientOptions, "fetch" | "onCall">> & { fetch: typeof fetch };
  readonly #onCall?: BflClientOptions["onCall"];

  constructor(options: BflClientOptions) {
    this.#options = {
      timeoutMs: 30_000,
      downloadTimeoutMs: 60_000,
      ...options,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    };
    this.#onCall = options.onCall;
  }

  /** Times `call` and reports its outcome (`kind`, plus the error code or HTTP status when there is one). */
  async #timed<T extends { kind: string; code?: string; httpStatus?: number; status?: string }>(
    operation: "submit" | "poll" | "download",
    call: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    const outcome = await call();
    const detail = outcome.code ?? (outcome.httpStatus ? String(outcome.httpStatus) : undefined);
    this.#onCall?.({ operation, seconds: (performance.now() - started) / 1000, outcome: detail ? `${outcome.kind}:${detail}` : outcome.kind });
    return outcome;
  }

  /** The submit URL for a model: the alpha endpoint lives on its own documented host. */
  submitUrl(model: ModelId): string {
    const base = model === "flux-bagel-alpha" ? this.#options.alphaApiUrl : this.#options.apiUrl;
    return `${base}/v1/${model}`;
  }

  /** POSTs a task. `body` must be a complete JSON document (see job-runner's request builder). */
  submit(model: ModelId, body: BodyInit): Promise<SubmitOutcome> {
    return this.#timed("submit", () => this.#submit(model, body));
  }

  async #submit(model: ModelId, body: BodyInit): Promise<SubmitOutcome> {
    let response: Response;
    try {
      response = await this.#options.fetch(this.submitUrl(model), {
        method: "POST",
        headers: { "x-key": this.#options.apiKey, "content-type": "application/json", accept: "application/json" },
        body,
        redirect: "manual", // never replay the key to wherever a redirect points
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
    } catch (error) {
      if (failedBeforeSending(error)) {
        return { kind: "retry_later", reason: `Cannot reach BFL: ${(error as Error).message}` };
      }
      return { kind: "unknown", message: `The submit to BFL did not complete: ${(error as Error).message}` };
    }
    const body_ = await readJson(response).catch(() => null);
    if (response.ok) {
      const record = (body_ ?? {}) as Record<string, unknown>;
      if (typeof record.id !== "string") {
        return { kind: "unknown", message: "BFL accepted the submit but returned no task id" };
      }
      // The webhook variant of the answer may lack polling_url; the documented get_result is the fallback.
      const pollingUrl = typeof record.polling_url === "string"
        ? record.polling_url
        : `${this.submitUrl(model).replace(/\/v1\/.*$/, "")}/v1/get_result?id=${encodeURIComponent(record.id)}`;
      return {
        kind: "accepted",
        id: record.id,
        pollingUrl,
        cost: toNumber(record.cost),
        inputMp: toNumber(record.input_mp),
        outputMp: toNumber(record.output_mp),
      };
    }
    const status = response.status;
    if (status === 429) {
      return { kind: "retry_later", reason: detailMessage(body_, "BFL's active-task limit is reached"), retryAfterMs: retryAfterMs(response.headers.get("retry-after")) };
    }
    if (status === 422) {
      const fields = fieldErrors(body_);
      return { kind: "rejected", httpStatus: 422, code: "provider_rejected_input", message: "BFL rejected the request's parameters", fields };
    }
    if (status === 402) {
      return { kind: "rejected", httpStatus: 402, code: "provider_insufficient_credits", message: "The BFL account has insufficient credits" };
    }
    if (status === 401 || status === 403) {
      return { kind: "rejected", httpStatus: status, code: "provider_auth_failed", message: "BFL refused the API key (check BFL_API_KEY)" };
    }
    if (status >= 400 && status < 500) {
      return { kind: "rejected", httpStatus: status, code: "provider_bad_request", message: `BFL refused the request: ${detailMessage(body_, `HTTP ${status}`)}` };
    }
    return { kind: "unknown", message: `BFL answered the submit with HTTP ${status}` };
  }

  /** GETs the polling URL exactly as BFL returned it (it points at the region holding the task). */
  poll(pollingUrl: string): Promise<PollOutcome> {
    return this.#timed("poll", () => this.#poll(pollingUrl));
  }

  async #poll(pollingUrl: string): Promise<PollOutcome> {
    if (!isTrustedProviderUrl(pollingUrl, this.#options.trustedOrigins)) {
      return { kind: "fatal", code: "untrusted_polling_url", message: "BFL's polling URL is not on a BFL host" };
    }
    let response: Response;
    try {
      response = await this.#options.fetch(pollingUrl, {
        headers: { "x-key": this.#options.apiKey, accept: "application/json" },
        redirect: "manual",
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
    } catch (error) {
      return { kind: "transient", message: `Cannot poll BFL: ${(error as Error).message}` };
    }
    const body = await readJson(response).catch(() => null);
    if (response.status === 401 || response.status === 403) {
      return { kind: "fatal", code: "provider_auth_failed", message: "BFL refused the API key while polling" };
    }
    if (response.status === 404) {
      return { kind: "fatal", code: "provider_task_not_found", message: "BFL's polling URL answered 404 (no such task)" };
    }
    if (!response.ok) return { kind: "transient", message: `BFL answered the poll with HTTP ${response.status}` };
    const record = (body ?? {}) as Record<string, unknown>;
    if (typeof record.status !== "string") return { kind: "transient", message: "BFL's poll answer had no status" };
    const result = record.result as Record<string, unknown> | null | undefined;
    return {
      kind: "status",
      status: record.status,
      sampleUrl: typeof result?.sample === "string" ? result.sample : undefined,
      progress: toNumber(record.progress),
      details: record.details ?? null,
    };
  }

  /** Downloads `result.sample` (no x-key: the URL is signed, and is not a BFL API host). */
  download(sampleUrl: string): Promise<DownloadOutcome> {
    return this.#timed("download", () => this.#download(sampleUrl));
  }

  async #download(sampleUrl: string): Promise<DownloadOutcome> {
    if (!isTrustedProviderUrl(sampleUrl, this.#options.trustedOrigins)) {
      return { kind: "fatal", code: "untrusted_result_url", message: "The result URL is not on a BFL delivery host" };
    }
    let response: Response;
    try {
      response = await this.#options.fetch(sampleUrl, {
        redirect: "manual",
        signal: AbortSignal.timeout(this.#options.downloadTimeoutMs),
      });
    } catch (error) {
      return { kind: "transient", message: `Cannot download the result: ${(error as Error).message}` };
    }
    if ([401, 403, 404, 410].includes(response.status)) {
      await response.body?.cancel();
      return { kind: "expired", message: `The result URL was refused with HTTP ${response.status} (it may have expired)` };
    }
    if (!response.ok) {
      await response.body?.cancel();
      return { kind: "transient", message: `The result download failed with HTTP ${response.status}` };
    }
    try {
      return { kind: "ok", bytes: new Uint8Array(await response.arrayBuffer()), contentType: response.headers.get("content-type") };
    } catch (error) {
      return { kind: "transient", message: `The result download broke off: ${(error as Error).message}` };
    }
  }
}
