/**
 * Moves one job a step forward: submits a queued job, polls a running one, stores a finished
 * image. The caller must hold the job's lease (store.claim / store.claimDue); every write is a
 * conditional transition, so a worker that lost its lease changes nothing.
 *
 * The status read, the inline submit after creation, the webhook receiver and the sweeper all call
 * this one function, so there is exactly one definition of how a job advances.
 *
 * @module
 */
import type { BflClient } from "../bfl/bfl-client.ts";
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { ImageStorage } from "../storage/image-storage.ts";
import type { JobStore } from "../store/job-store.ts";
import { sniffImage } from "../images/sniff-image.ts";
import type { ImageBody } from "../images/image-body.ts";
import type { JobPatch, JobRow, JobStatus } from "./job-row.ts";
import { ACCOUNT_MAX_ACTIVE_TASKS, MODEL_SPECS } from "./models.ts";
import { buildSubmitBody } from "./submit-body.ts";

export interface RunnerDeps {
  store: JobStore;
  storage: ImageStorage;
  /** Undefined when BFL_API_KEY is not set: queued jobs then wait. */
  bfl?: BflClient;
  log: Logger;
  /** Identifies this process; each claim adds its own token (see leaseToken). */
  workerId: string;
  leaseSeconds: number;
  pollIntervalMs: number;
  /** Poll interval for jobs that will announce themselves by webhook (a fallback only). */
  webhookPollIntervalMs?: number;
  jobTimeoutMs: number;
  /** Counts transitions and stored images when given. */
  metrics?: Metrics;
  /** Adds webhook_url/webhook_secret to a submission when webhooks are configured. */
  webhookFor?: (job: Pick<JobRow, "id">) => { url: string; secret: string } | undefined;
  now?: () => number;
}

/** BFL's signed result URLs are valid for 10 minutes after the task is Ready. */
export const SAMPLE_URL_LIFETIME_MS = 10 * 60_000;
const MAX_RETRY_DELAY_MS = 30_000;

const at = (ms: number) => new Date(ms);

/**
 * A lease owner unique to one claim. Sharing one owner per process would let a worker whose
 * claim had expired (and been taken again in the same process) still pass the owner check.
 */
export function leaseToken(workerId: string): string {
  return `${workerId}/${crypto.randomUUID().slice(0, 8)}`;
}

/** With a webhook coming, polling is only a safety net and can be rare. */
const pollDelay = (deps: RunnerDeps, job: JobRow) =>
  job.webhook_secret ? Math.max(deps.pollIntervalMs, deps.webhookPollIntervalMs ?? 0) : deps.pollIntervalMs;

export async function advanceJob(
  deps: RunnerDeps,
  job: JobRow,
  /** Inputs still held by the create request, by storage path (saves reading them back). */
  uploaded?: ReadonlyMap<string, ImageBody>,
): Promise<JobRow> {
  switch (job.status) {
    case "queued":
      return await submitJob(deps, job, uploaded);
    case "submitting":
      // Only reachable when a worker died mid-submit (its lease expired): see crash policy below.
      return await failInterruptedSubmit(deps, job);
    case "running":
      return await checkJob(deps, job);
    default:
      return job;
  }
}

async function transition(deps: RunnerDeps, job: JobRow, from: JobStatus[], patch: JobPatch): Promise<JobRow> {
  // The claim's own token: whoever claimed this row (see leaseToken).
  const updated = await deps.store.transition(job.id, job.lease_owner ?? "", from, patch);
  if (!updated) {
    // Lost the lease or someone else moved the job: nothing was written; report the truth.
    deps.log.warn("job.transition_skipped", { job_id: job.id, from: job.status, to: patch.status });
    return (await deps.store.get(job.id)) ?? job;
  }
  if (updated.status !== job.status) recordTransition(deps, job.status, updated);
  return updated;
}

/** The one log event and metric of every status change. */
export function recordTransition(deps: RunnerDeps, from: JobStatus, job: JobRow): void {
  deps.log.info("job.transition", {
    job_id: job.id,
    model: job.model,
    from,
    to: job.status,
    provider_status: job.provider_status,
    error_code: job.error_code,
  });
  deps.metrics?.increment("image_jobs_transitions_total", "Job status changes", { model: job.model, to: job.status });
}

function finish(deps: RunnerDeps, status: "failed" | "moderated", code: string, message: string, details?: unknown): JobPatch {
  const now = deps.now?.() ?? Date.now();
  return { status, error_code: code, error_message: message, error_details: details ?? null, finished_at: at(now) };
}

function retryDelay(base: number, attempt: number): number {
  // Exponential with full jitter, so a crowd of requeued jobs does not come back in lockstep.
  const cap = Math.min(MAX_RETRY_DELAY_MS, base * 2 ** Math.min(attempt, 10));
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

/** The counts include this job itself: a claimed queued job already holds its slot. */
async function hasFreeSlot(deps: RunnerDeps, job: JobRow): Promise<boolean> {
  const counts = await deps.store.activeCounts();
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  return total <= ACCOUNT_MAX_ACTIVE_TASKS && (counts[job.model] ?? 0) <= MODEL_SPECS[job.model].maxActiveTasks;
}

async function submitJob(deps: RunnerDeps, job: JobRow, uploaded?: ReadonlyMap<string, ImageBody>): Promise<JobRow> {
  const now = deps.now?.() ?? Date.now();
  if (!deps.bfl) {
    return await transition(deps, job, ["queued"], { next_check_at: at(now + 30_000) });
  }
  if (!(await hasFreeSlot(deps, job))) {
    // Wait for a slot instead of collecting 429s from BFL.
    return await transition(deps, job, ["queued"], { next_check_at: at(now + 1000) });
  }
  // Crash safety: the job is marked as being submitted *before* the POST, keeping the lease.
  const webhook = deps.webhookFor?.(job);
  const submitting = await transition(deps, job, ["queued"], {
    status: "submitting",
    submit_attempts: job.submit_attempts + 1,
    webhook_secret: webhook?.secret ?? null,
    lease_owner: job.lease_owner,
    lease_until: at(now + deps.leaseSeconds * 1000),
  });
  if (submitting.status !== "submitting" || submitting.lease_owner !== job.lease_owner) return submitting;
  return await sendSubmission(deps, submitting, webhook, uploaded);
}

/**
 * Sends a job that is already `submitting` and leased by the caller to BFL, and records BFL's
 * answer. The create request enters here directly when image_jobs_create claimed its new job.
 */
export async function sendSubmission(
  deps: RunnerDeps,
  submitting: JobRow,
  webhook: { url: string; secret: string } | undefined,
  uploaded?: ReadonlyMap<string, ImageBody>,
): Promise<JobRow> {
  if (!deps.bfl) throw new Error("Cannot submit a job: no BFL client is configured");
  let body: BodyInit;
  try {
    body = await buildSubmitBody(submitting, deps.storage, webhook, uploaded);
  } catch (error) {
    return await transition(deps, submitting, ["submitting"], finish(deps, "failed", "input_unavailable", (error as Error).message));
  }
  const outcome = await deps.bfl.submit(submitting.model, body);
  const after = deps.now?.() ?? Date.now();
  switch (outcome.kind) {
    case "accepted":
      return await transition(deps, submitting, ["submitting"], {
        status: "running",
        provider_task_id: outcome.id,
        polling_url: outcome.pollingUrl,
        provider_status: "Pending",
        cost: outcome.cost,
        input_mp: outcome.inputMp,
        output_mp: outcome.outputMp,
        submitted_at: at(after),
        next_check_at: at(after + pollDelay(deps, submitting)),
      });
    case "retry_later":
      // BFL did not take the task (429 or unreachable): back in the queue, not failed.
      return await transition(deps, submitting, ["submitting"], {
        status: "queued",
        provider_status: null,
        error_code: null,
        error_message: null,
        next_check_at: at(after + (outcome.retryAfterMs ?? retryDelay(1000, submitting.submit_attempts - 1))),
      });
    case "rejected":
      return await transition(
        deps,
        submitting,
        ["submitting"],
        finish(deps, "failed", outcome.code, outcome.message, outcome.fields ? { fields: outcome.fields, http_status: outcome.httpStatus } : { http_status: outcome.httpStatus }),
      );
    case "unknown":
      // Never resubmitted: BFL may have accepted (and billed) it.
      return await transition(
        deps,
        submitting,
        ["submitting"],
        finish(
          deps,
          "failed",
          "provider_outcome_unknown",
          `${outcome.message}. The job was not resubmitted because BFL may have accepted and billed it; create a new job to try again`,
        ),
      );
  }
}

/**
 * Crash policy: a job left in `submitting` by a worker that died between marking it and recording
 * BFL's answer may or may not exist at BFL (and be billed). BFL offers no way to look a task up by
 * anything but its id, which was never recorded, so the job is failed with a clear code rather than
 * submitted a second time. The caller can create a new job; no job is ever paid for twice.
 */
async function failInterruptedSubmit(deps: RunnerDeps, job: JobRow): Promise<JobRow> {
  return await transition(
    deps,
    job,
    ["submitting"],
    finish(
      deps,
      "failed",
      "submit_interrupted",
      "The service stopped while submitting this job to BFL; it was not resubmitted because BFL may already have accepted and billed it. Create a new job to try again",
    ),
  );
}

async function checkJob(deps: RunnerDeps, job: JobRow): Promise<JobRow> {
  const now = deps.now?.() ?? Date.now();
  const startedAt = (job.submitted_at ?? job.created_at).getTime();
  // Past the deadline a job is failed only after one more look: BFL may have finished (and
  // billed) it while nobody polled, and that image must still be saved.
  const overdue = now - startedAt > deps.jobTimeoutMs;
  const timedOut = (checked: JobPatch) =>
    transition(deps, job, ["running"], {
      ...checked,
      ...finish(deps, "failed", "timed_out", `BFL did not finish the job within ${Math.round(deps.jobTimeoutMs / 1000)} seconds`),
    });
  if (!deps.bfl || !job.polling_url) {
    if (overdue) return await timedOut({});
    return await transition(deps, job, ["running"], { next_check_at: at(now + 30_000) });
  }
  const poll = await deps.bfl.poll(job.polling_url);
  const checked = { last_checked_at: at(now), poll_count: job.poll_count + 1 };
  if (poll.kind === "transient") {
    deps.log.warn("job.poll_failed", { job_id: job.id, reason: poll.message });
    if (overdue && job.provider_status !== "Ready") return await timedOut(checked);
    return await transition(deps, job, ["running"], { ...checked, next_check_at: at(now + retryDelay(deps.pollIntervalMs, 1)) });
  }
  if (poll.kind === "fatal") {
    return await transition(deps, job, ["running"], { ...checked, ...finish(deps, "failed", poll.code, poll.message) });
  }
  switch (poll.status) {
    case "Ready":
      if (!poll.sampleUrl) {
        return await transition(deps, job, ["running"], { ...checked, ...finish(deps, "failed", "provider_error", "BFL reported Ready without a result URL") });
      }
      return await storeResult(deps, job, poll.sampleUrl, checked);
    case "Pending":
    case "Queued": // seen in old doc samples; treated as in progress
    case "Processing":
      if (overdue) return await timedOut({ ...checked, provider_status: poll.status });
      return await transition(deps, job, ["running"], {
        ...checked,
        provider_status: poll.status,
        next_check_at: at(now + pollDelay(deps, job)),
      });
    case "Request Moderated":
      return await transition(deps, job, ["running"], {
        ...checked,
        provider_status: poll.status,
        ...finish(deps, "moderated", "request_moderated", "BFL's moderation flagged the prompt or input image before generation (not charged)", poll.details),
      });
    case "Content Moderated":
      return await transition(deps, job, ["running"], {
        ...checked,
        provider_status: poll.status,
        ...finish(deps, "moderated", "content_moderated", "BFL's moderation flagged the generated image (not charged)", poll.details),
      });
    case "Error":
    case "Failed":
      return await transition(deps, job, ["running"], {
        ...checked,
        provider_status: poll.status,
        ...finish(deps, "failed", "provider_error", "BFL reported an error while generating the image", poll.details),
      });
    case "Task not found":
      return await transition(deps, job, ["running"], {
        ...checked,
        provider_status: poll.status,
        ...finish(deps, "failed", "provider_task_not_found", "BFL no longer knows this task (it does not exist or has expired)"),
      });
    default:
      // An undocumented status: keep polling until the job's deadline rather than guess.
      deps.log.warn("job.unknown_provider_status", { job_id: job.id, provider_status: poll.status });
      if (overdue) return await timedOut({ ...checked, provider_status: poll.status });
      return await transition(deps, job, ["running"], {
        ...checked,
        provider_status: poll.status,
        next_check_at: at(now + deps.pollIntervalMs),
      });
  }
}

const EXTENSIONS: Record<string, string> = { "image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif" };

/** Downloads result.sample and stores it; only then is the job `succeeded`. */
async function storeResult(deps: RunnerDeps, job: JobRow, sampleUrl: string, checked: JobPatch): Promise<JobRow> {
  const now = deps.now?.() ?? Date.now();
  const readyAt = job.ready_at ?? at(now);
  // Renew the claim before the slow part, and stop if it was lost: one worker stores an image once.
  const renewed = await deps.store.transition(job.id, job.lease_owner ?? "", ["running"], {
    lease_owner: job.lease_owner,
    lease_until: at(now + deps.leaseSeconds * 1000),
  });
  if (!renewed) {
    deps.log.warn("job.lease_lost", { job_id: job.id });
    return (await deps.store.get(job.id)) ?? job;
  }
  const download = await deps.bfl!.download(sampleUrl);
  if (download.kind === "ok") {
    const sniffed = sniffImage(download.bytes);
    const contentType = sniffed?.contentType ??
      (job.params.output_format === "png" ? "image/png" : "image/jpeg");
    const path = `results/${job.user_id}/${job.id}.${EXTENSIONS[contentType] ?? "bin"}`;
    // Deterministic path + overwrite: a retried store after a crash cannot leave two copies.
    await deps.storage.put(path, download.bytes, contentType);
    const done = deps.now?.() ?? Date.now();
    deps.metrics?.increment("images_stored_total", "Finished images copied into storage", { model: job.model });
    deps.metrics?.increment("image_bytes_stored_total", "Bytes of finished images stored", { model: job.model }, download.bytes.byteLength);
    deps.log.info("job.image_stored", { job_id: job.id, bytes: download.bytes.byteLength, ready_to_stored_ms: done - readyAt.getTime() });
    return await transition(deps, job, ["running"], {
      ...checked,
      status: "succeeded",
      provider_status: "Ready",
      ready_at: readyAt,
      result_path: path,
      result_content_type: contentType,
      result_bytes: download.bytes.byteLength,
      finished_at: at(done),
      error_code: null,
      error_message: null,
      error_details: null,
    });
  }
  const expiredForGood = now - readyAt.getTime() > SAMPLE_URL_LIFETIME_MS;
  if (download.kind === "fatal" || (download.kind === "expired" && (expiredForGood || job.provider_status === "Ready"))) {
    // A second refusal (or one past the 10 minutes) means the image is gone at BFL.
    const code = download.kind === "fatal" ? download.code : "result_expired";
    return await transition(deps, job, ["running"], {
      ...checked,
      provider_status: "Ready",
      ready_at: readyAt,
      ...finish(deps, "failed", code, `The finished image could not be saved: ${download.message}`),
    });
  }
  if (expiredForGood) {
    return await transition(deps, job, ["running"], {
      ...checked,
      provider_status: "Ready",
      ready_at: readyAt,
      ...finish(deps, "failed", "result_expired", `The finished image could not be saved within BFL's 10 minutes: ${download.message}`),
    });
  }
  // Transient failure, or a first refusal: poll again shortly (a fresh poll may carry a fresh URL).
  deps.log.warn("job.download_failed", { job_id: job.id, reason: download.message });
  return await transition(deps, job, ["running"], {
    ...checked,
    provider_status: "Ready",
    ready_at: readyAt,
    next_check_at: at(now + 1000),
  });
}
