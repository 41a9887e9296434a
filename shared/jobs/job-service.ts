/**
 * The job use cases behind the HTTP API: create (store inputs, insert the row, submit inline when a
 * provider slot is free), read (refreshing a due in-flight job), list.
 *
 * @module
 */
import type { CreateJobRequest } from "../api/job-schemas.ts";
import { ApiError } from "../http/api-error.ts";
import type { ImageBody } from "../images/image-body.ts";
import type { ImageFormat } from "../images/sniff-image.ts";
import type { JobInput, JobRow } from "./job-row.ts";
import { FINISHED_STATUSES, IN_FLIGHT_STATUSES } from "./job-row.ts";
import { advanceJob, leaseToken, recordTransition, type RunnerDeps, sendSubmission } from "./job-runner.ts";
import { ACCOUNT_MAX_ACTIVE_TASKS, IMAGE_SLOTS, type ImageSlot, MODEL_SPECS } from "./models.ts";

/** An input image after validation: bytes we hold, or an https URL BFL will fetch. */
export type ResolvedImage =
  | { kind: "bytes"; body: ImageBody; contentType: string; format: ImageFormat }
  | { kind: "url"; url: string }
  /** An earlier job's stored output, already checked to be the caller's and succeeded. */
  | { kind: "job"; jobId: string; path: string; contentType: string; bytes: number };

export type ResolvedImages = Partial<Record<ImageSlot, ResolvedImage>>;

export interface CreateJobOptions {
  parentJobId?: string | null;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  /** Try to submit to BFL during the request (default true). */
  submitInline?: boolean;
}

/** Provider parameters as sent to BFL, defaults made explicit (the docs disagree on some). */
export function providerParams(request: CreateJobRequest): Record<string, unknown> {
  const params: Record<string, unknown> = {
    prompt: request.prompt,
    output_format: request.output_format,
    safety_tolerance: request.safety_tolerance,
  };
  if (request.seed !== undefined) params.seed = request.seed;
  if (request.model === "flux-bagel-alpha") {
    params.steps = request.steps ?? 50;
    params.guidance = request.guidance ?? 3.0;
  } else {
    if (request.aspect_ratio !== undefined) params.aspect_ratio = request.aspect_ratio;
    if (request.prompt_upsampling !== undefined) params.prompt_upsampling = request.prompt_upsampling;
  }
  return params;
}

export interface UserLimits {
  /** Unfinished jobs a user may have at once (0: no limit). */
  maxActiveJobs: number;
  /** Jobs a user may create in any 24 hours (0: no limit). */
  maxJobsPerDay: number;
}

export interface CreateOutcome {
  job: JobRow;
  /** True when an Idempotency-Key matched an earlier identical request. */
  replayed: boolean;
}

export class JobService {
  constructor(readonly deps: RunnerDeps, readonly limits: UserLimits = { maxActiveJobs: 0, maxJobsPerDay: 0 }) {}

  /**
   * Create with Stripe-style idempotency and per-user limits: the same key and the same request
   * return the first job (no second provider call); the same key with another request is a 409.
   */
  async createOnce(
    userId: string,
    request: CreateJobRequest,
    images: ResolvedImages,
    options: { idempotencyKey?: string; requestHash: string },
  ): Promise<CreateOutcome> {
    const key = options.idempotencyKey;
    const replay = async (): Promise<CreateOutcome | null> => {
      if (!key) return null;
      const existing = await this.deps.store.findByIdempotencyKey(userId, key);
      if (!existing) return null;
      if (existing.request_hash !== options.requestHash) {
        throw new ApiError(409, "idempotency_key_reused", "This Idempotency-Key was already used with a different request", {
          details: [{ field: "Idempotency-Key", message: "Already used with a different request" }],
        });
      }
      return { job: existing, replayed: true };
    };
    const earlier = await replay();
    if (earlier) return earlier;
    await this.#checkLimits(userId);
    try {
      const job = await this.create(userId, request, images, { idempotencyKey: key, requestHash: options.requestHash });
      return { job, replayed: false };
    } catch (error) {
      // A concurrent request with the same key won the insert: answer as its replay.
      const raced = await replay().catch(() => null);
      if (raced) return raced;
      throw error;
    }
  }

  async #checkLimits(userId: string): Promise<void> {
    const { maxActiveJobs, maxJobsPerDay } = this.limits;
    if (!maxActiveJobs && !maxJobsPerDay) return;
    const usage = await this.deps.store.usage(userId);
    if (maxActiveJobs && usage.active >= maxActiveJobs) {
      throw new ApiError(429, "too_many_active_jobs", `You have ${usage.active} unfinished jobs; the limit is ${maxActiveJobs}. Retry when one finishes`, {
        headers: { "retry-after": "5" },
      });
    }
    if (maxJobsPerDay && usage.lastDay >= maxJobsPerDay) {
      const frees = (usage.oldestInDay?.getTime() ?? Date.now()) + 24 * 3600_000;
      const seconds = Math.max(1, Math.ceil((frees - Date.now()) / 1000));
      throw new ApiError(429, "daily_limit_reached", `You have created ${usage.lastDay} jobs in the last 24 hours; the limit is ${maxJobsPerDay}`, {
        headers: { "retry-after": String(seconds) },
      });
    }
  }

  async create(userId: string, request: CreateJobRequest, images: ResolvedImages, options: CreateJobOptions = {}): Promise<JobRow> {
    const { store, storage } = this.deps;
    const id = crypto.randomUUID();
    const inputs: JobInput[] = [];
    const written: string[] = [];
    // Fresh uploads are submitted from the request's own copy, not read back from storage.
    const uploaded = new Map<string, ImageBody>();
    try {
      for (const slot of IMAGE_SLOTS) {
        const image = images[slot];
        if (!image || !MODEL_SPECS[request.model].imageSlots.includes(slot)) continue;
        if (image.kind === "url") {
          inputs.push({ slot, kind: "url", url: image.url });
          continue;
        }
        if (image.kind === "job") {
          inputs.push({ slot, kind: "job", job_id: image.jobId, path: image.path, content_type: image.contentType, bytes: image.bytes });
          continue;
        }
        const path = `inputs/${userId}/${id}/${slot}.${image.format}`;
        written.push(path);
        await storage.put(path, image.body.stream(), image.contentType);
        uploaded.set(path, image.body);
        inputs.push({ slot, kind: "upload", path, content_type: image.contentType, bytes: image.body.size });
      }
      await store.ensureUser?.(userId);
      // Submit during the request only when nobody is waiting: otherwise a new job would take a
      // freed slot ahead of older queued ones. The sweeper submits those in fair order. The
      // check, the slot and the claim are one statement with the insert (image_jobs_create).
      const inline = options.submitInline !== false && this.deps.bfl !== undefined;
      const webhook = inline ? this.deps.webhookFor?.({ id }) : undefined;
      const job = await store.create({
        id,
        user_id: userId,
        model: request.model,
        params: providerParams(request),
        inputs,
        // The edit chain follows the main image: an edit of job X is X's child.
        parent_job_id: options.parentJobId ?? (images.input_image?.kind === "job" ? images.input_image.jobId : null),
        idempotency_key: options.idempotencyKey ?? null,
        request_hash: options.requestHash ?? null,
      }, inline
        ? {
          owner: leaseToken(this.deps.workerId),
          leaseSeconds: this.deps.leaseSeconds,
          accountMaxActive: ACCOUNT_MAX_ACTIVE_TASKS,
          modelMaxActive: MODEL_SPECS[request.model].maxActiveTasks,
          webhookSecret: webhook?.secret ?? null,
        }
        : undefined);
      this.deps.log.info("job.created", { job_id: id, model: job.model, user_id: userId, inputs: inputs.length });
      if (job.status !== "submitting") return job;
      recordTransition(this.deps, "queued", job);
      try {
        return await sendSubmission(this.deps, job, webhook, uploaded);
      } catch (error) {
        // The job exists and keeps its inputs. It is `submitting`: if BFL's answer is lost the
        // crash policy applies (failed as submit_interrupted once the lease expires, never resent).
        this.deps.log.error("job.inline_submit_failed", { job_id: id, error: (error as Error).message });
        return job;
      }
    } catch (error) {
      // Leave nothing behind: no orphaned input files for a job that does not exist.
      await storage.remove(written).catch(() => {});
      throw error;
    }
  }

  /** Claims the job and moves it one step; returns it unchanged if someone else holds it. */
  async advance(job: JobRow, onlyIfDue = true, uploaded?: ReadonlyMap<string, ImageBody>): Promise<JobRow> {
    const claimed = await this.deps.store.claim(job.id, leaseToken(this.deps.workerId), this.deps.leaseSeconds, onlyIfDue);
    if (!claimed) return job;
    return await advanceJob(this.deps, claimed, uploaded);
  }

  /** Finished jobs never change again, so reads of them can skip the database. */
  #finished = new Map<string, JobRow>();

  /** A user's job; an in-flight job whose next check is due is refreshed from BFL first. */
  async get(id: string, userId: string, refresh = true): Promise<JobRow | null> {
    const cached = this.#finished.get(id);
    if (cached) return cached.user_id === userId ? cached : null;
    const job = await this.deps.store.get(id, userId);
    if (job && FINISHED_STATUSES.includes(job.status)) this.#remember(job);
    // Queued jobs are the sweeper's, in fair order; a read only refreshes jobs already at BFL.
    if (!job || !refresh || !IN_FLIGHT_STATUSES.includes(job.status)) return job;
    if (job.next_check_at.getTime() > (this.deps.now?.() ?? Date.now())) return job;
    return await this.advance(job);
  }

  #remember(job: JobRow): void {
    if (this.#finished.size >= 10_000) this.#finished.delete(this.#finished.keys().next().value!);
    this.#finished.set(job.id, job);
  }
}
