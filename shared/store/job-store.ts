/**
 * The port every job store implements (embedded PGlite, direct Postgres, Supabase). All state
 * changes go through the SQL functions of the migration, so the guarantees (atomic claims, no
 * backwards transitions) are the database's, not each adapter's.
 *
 * @module
 */
import type { JobPatch, JobRow, JobStatus, NewJob } from "../jobs/job-row.ts";

export interface ListOptions {
  limit: number;
  /** Keyset cursor: jobs strictly older than this (created_at, id). */
  before?: { createdAt: Date; id: string };
}

export interface UserUsage {
  active: number;
  lastDay: number;
  /** The oldest job of the last 24 hours: the daily limit frees up 24 h after it. */
  oldestInDay: Date | null;
}

/** Asks `create` to claim the new job for an immediate submit when that is fair and a slot is free. */
export interface SubmitClaim {
  owner: string;
  leaseSeconds: number;
  accountMaxActive: number;
  modelMaxActive: number;
  /** Stored with the job when it is claimed (its BFL webhook's secret). */
  webhookSecret: string | null;
}

export interface JobStore {
  insert(job: NewJob): Promise<JobRow>;
  /**
   * Inserts a job in one statement; with `claim`, atomically inserts it as `submitting` and
   * leased to `claim.owner` when no queued job waits ahead of it and a provider slot is free
   * (image_jobs_create in the migrations), else as `queued`.
   */
  create(job: NewJob, claim?: SubmitClaim): Promise<JobRow>;
  /** Deletes a job row; only for undoing a creation that failed half-way. */
  remove(id: string): Promise<void>;
  /** A job by id, scoped to its owner when userId is given (another user's job → null). */
  get(id: string, userId?: string): Promise<JobRow | null>;
  list(userId: string, options: ListOptions): Promise<JobRow[]>;
  /** Takes the lease on one unfinished job; null when someone else holds it (or it is not due). */
  claim(id: string, owner: string, leaseSeconds: number, onlyIfDue: boolean): Promise<JobRow | null>;
  /**
   * Takes the lease on up to `limit` due jobs at once: in-flight jobs first, then queued jobs
   * round-robin across users, at most `maxQueued` of them (the free provider slots).
   */
  claimDue(owner: string, limit: number, leaseSeconds: number, maxQueued?: number): Promise<JobRow[]>;
  /** A user's unfinished jobs and jobs created in the last 24 hours (per-user limits). */
  usage(userId: string): Promise<UserUsage>;
  /** The chain of edits ending with this job, oldest first; [] when it is not the user's. */
  lineage(id: string, userId: string): Promise<JobRow[]>;
  /** The user's job created with this Idempotency-Key, if any. */
  findByIdempotencyKey(userId: string, key: string): Promise<JobRow | null>;
  /** Applies `patch` if `owner` holds the lease and the status is one of `from`; else null. */
  transition(id: string, owner: string, from: JobStatus[], patch: JobPatch): Promise<JobRow | null>;
  /** Jobs holding a provider slot, per model. */
  activeCounts(): Promise<Record<string, number>>;
  /** Queued jobs that nobody holds (waiting for a slot). */
  queueDepth(): Promise<number>;
  /** Jobs by model and status (metrics). */
  statusCounts(): Promise<{ model: string; status: string; jobs: number }[]>;
  /** Makes sure the user row exists (auth.users) for stores without Supabase Auth. */
  ensureUser?(userId: string): Promise<void>;
  close(): Promise<void>;
}
