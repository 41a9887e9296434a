/**
 * JobStore over any SqlClient (PGlite or a real PostgreSQL server). Reads are plain SQL; every
 * state change calls a function from the migration.
 *
 * @module
 */
import type { JobPatch, JobRow, JobStatus, NewJob } from "../jobs/job-row.ts";
import type { JobStore, ListOptions, SubmitClaim, UserUsage } from "./job-store.ts";
import type { SqlClient } from "./sql-client.ts";

// JSON goes in as text (`$n::text::jsonb`): postgres.js would JSON-encode a string it knows is
// jsonb a second time, storing a JSON string instead of an object.
const NUMERIC_COLUMNS = ["cost", "input_mp", "output_mp", "result_bytes", "submit_attempts", "poll_count"] as const;
const DATE_COLUMNS = [
  "next_check_at", "lease_until", "created_at", "updated_at", "submitted_at", "ready_at", "finished_at",
  "last_checked_at",
] as const;

/** Normalises driver differences: numerics/bigints arrive as strings, json may arrive as text. */
export function toJobRow(raw: Record<string, unknown>): JobRow {
  const row = { ...raw } as Record<string, unknown>;
  for (const column of NUMERIC_COLUMNS) {
    if (row[column] !== null && row[column] !== undefined) row[column] = Number(row[column]);
  }
  for (const column of DATE_COLUMNS) {
    const value = row[column];
    if (value !== null && value !== undefined && !(value instanceof Date)) row[column] = new Date(value as string);
  }
  for (const column of ["params", "inputs", "error_details"]) {
    if (typeof row[column] === "string") row[column] = JSON.parse(row[column] as string);
  }
  return row as unknown as JobRow;
}

export function toUsage(row: { active: unknown; last_day: unknown; oldest_in_day: unknown } | undefined): UserUsage {
  return {
    active: Number(row?.active ?? 0),
    lastDay: Number(row?.last_day ?? 0),
    oldestInDay: row?.oldest_in_day ? new Date(row.oldest_in_day as string) : null,
  };
}

export class SqlJobStore implements JobStore {
  /** Users already known to exist: one insert per user per process, not per job. */
  #knownUsers = new Set<string>();

  constructor(private readonly db: SqlClient) {}

  async insert(job: NewJob): Promise<JobRow> {
    const rows = await this.db.query(
      `insert into public.image_jobs (id, user_id, model, params, inputs, parent_job_id, idempotency_key, request_hash)
       values ($1, $2, $3, $4::text::jsonb, $5::text::jsonb, $6, $7, $8)
       returning *`,
      [
        job.id, job.user_id, job.model, JSON.stringify(job.params), JSON.stringify(job.inputs),
        job.parent_job_id ?? null, job.idempotency_key ?? null, job.request_hash ?? null,
      ],
    );
    return toJobRow(rows[0]);
  }

  async create(job: NewJob, claim?: SubmitClaim): Promise<JobRow> {
    const rows = await this.db.query(
      "select * from public.image_jobs_create($1::text::jsonb, $2, $3, $4, $5, $6)",
      [
        JSON.stringify(job), claim?.owner ?? null, claim?.leaseSeconds ?? 60, claim?.accountMaxActive ?? 24,
        claim?.modelMaxActive ?? 24, claim?.webhookSecret ?? null,
      ],
    );
    return toJobRow(rows[0]);
  }

  async remove(id: string): Promise<void> {
    await this.db.query("delete from public.image_jobs where id = $1", [id]);
  }

  async get(id: string, userId?: string): Promise<JobRow | null> {
    const rows = userId === undefined
      ? await this.db.query("select * from public.image_jobs where id = $1", [id])
      : await this.db.query("select * from public.image_jobs where id = $1 and user_id = $2", [id, userId]);
    return rows[0] ? toJobRow(rows[0]) : null;
  }

  async list(userId: string, options: ListOptions): Promise<JobRow[]> {
    const rows = await this.db.query("select * from public.image_jobs_list($1, $2, $3, $4)", [
      userId, options.limit, options.before?.createdAt.toISOString() ?? null, options.before?.id ?? null,
    ]);
    return rows.map(toJobRow);
  }

  async claim(id: string, owner: string, leaseSeconds: number, onlyIfDue: boolean): Promise<JobRow | null> {
    const rows = await this.db.query("select * from public.image_jobs_claim($1, $2, $3, $4)", [
      id, owner, leaseSeconds, onlyIfDue,
    ]);
    return rows[0] ? toJobRow(rows[0]) : null;
  }

  async claimDue(owner: string, limit: number, leaseSeconds: number, maxQueued?: number): Promise<JobRow[]> {
    const rows = await this.db.query("select * from public.image_jobs_claim_due($1, $2, $3, $4)", [
      owner, limit, leaseSeconds, maxQueued ?? null,
    ]);
    return rows.map(toJobRow);
  }

  async usage(userId: string): Promise<UserUsage> {
    const [row] = await this.db.query<{ active: unknown; last_day: unknown; oldest_in_day: unknown }>(
      "select * from public.image_jobs_user_usage($1)",
      [userId],
    );
    return toUsage(row);
  }

  async lineage(id: string, userId: string): Promise<JobRow[]> {
    const rows = await this.db.query("select * from public.image_jobs_lineage($1, $2)", [id, userId]);
    return rows.map(toJobRow);
  }

  async findByIdempotencyKey(userId: string, key: string): Promise<JobRow | null> {
    const rows = await this.db.query("select * from public.image_jobs where user_id = $1 and idempotency_key = $2", [userId, key]);
    return rows[0] ? toJobRow(rows[0]) : null;
  }

  async transition(id: string, owner: string, from: JobStatus[], patch: JobPatch): Promise<JobRow | null> {
    const rows = await this.db.query("select * from public.image_jobs_transition($1, $2, $3::text::text[], $4::text::jsonb)", [
      id, owner, `{${from.join(",")}}`, JSON.stringify(patch),
    ]);
    return rows[0] ? toJobRow(rows[0]) : null;
  }

  async activeCounts(): Promise<Record<string, number>> {
    const rows = await this.db.query<{ model: string; active: unknown }>("select * from public.image_jobs_active_counts()");
    return Object.fromEntries(rows.map((row) => [row.model, Number(row.active)]));
  }

  async queueDepth(): Promise<number> {
    const [row] = await this.db.query<{ depth: unknown }>("select public.image_jobs_queue_depth() as depth");
    return Number(row?.depth ?? 0);
  }

  async statusCounts(): Promise<{ model: string; status: string; jobs: number }[]> {
    const rows = await this.db.query<{ model: string; status: string; jobs: unknown }>("select * from public.image_jobs_status_counts()");
    return rows.map((row) => ({ model: row.model, status: row.status, jobs: Number(row.jobs) }));
  }

  async ensureUser(userId: string): Promise<void> {
    if (this.#knownUsers.has(userId)) return;
    await this.db.query("insert into auth.users (id) values ($1) on conflict (id) do nothing", [userId]);
    this.#knownUsers.add(userId);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
