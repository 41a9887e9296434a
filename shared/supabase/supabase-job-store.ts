/**
 * JobStore over supabase-js: inserts and reads through PostgREST, every state change through the
 * migration's SQL functions as RPCs, so the guarantees are the same as for the SQL store.
 *
 * @module
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import type { JobPatch, JobRow, JobStatus, NewJob } from "../jobs/job-row.ts";
import type { JobStore, ListOptions, SubmitClaim, UserUsage } from "../store/job-store.ts";
import { toJobRow, toUsage } from "../store/sql-job-store.ts";

const TABLE = "image_jobs";

function fail(action: string, error: { message: string; code?: string }): never {
  throw new Error(`Cannot ${action}: ${error.message}${error.code ? ` (${error.code})` : ""}`);
}

export class SupabaseJobStore implements JobStore {
  constructor(private readonly client: SupabaseClient) {}

  async #rpc(name: string, args: Record<string, unknown>): Promise<JobRow[]> {
    const { data, error } = await this.client.rpc(name, args);
    if (error) fail(`call ${name}`, error);
    return ((data ?? []) as Record<string, unknown>[]).map(toJobRow);
  }

  async insert(job: NewJob): Promise<JobRow> {
    const { data, error } = await this.client.from(TABLE).insert(job).select().single();
    if (error) fail("insert the job", error);
    return toJobRow(data);
  }

  async create(job: NewJob, claim?: SubmitClaim): Promise<JobRow> {
    const [row] = await this.#rpc("image_jobs_create", {
      p_job: job,
      p_owner: claim?.owner ?? null,
      p_lease_seconds: claim?.leaseSeconds ?? 60,
      p_account_max_active: claim?.accountMaxActive ?? 24,
      p_model_max_active: claim?.modelMaxActive ?? 24,
      p_webhook_secret: claim?.webhookSecret ?? null,
    });
    return row;
  }

  async remove(id: string): Promise<void> {
    const { error } = await this.client.from(TABLE).delete().eq("id", id);
    if (error) fail("delete the job", error);
  }

  async get(id: string, userId?: string): Promise<JobRow | null> {
    let query = this.client.from(TABLE).select("*").eq("id", id);
    if (userId !== undefined) query = query.eq("user_id", userId);
    const { data, error } = await query.maybeSingle();
    if (error) fail("read the job", error);
    return data ? toJobRow(data) : null;
  }

  list(userId: string, options: ListOptions): Promise<JobRow[]> {
    return this.#rpc("image_jobs_list", {
      p_user_id: userId,
      p_limit: options.limit,
      p_before_created_at: options.before?.createdAt.toISOString() ?? null,
      p_before_id: options.before?.id ?? null,
    });
  }

  async claim(id: string, owner: string, leaseSeconds: number, onlyIfDue: boolean): Promise<JobRow | null> {
    const rows = await this.#rpc("image_jobs_claim", { p_id: id, p_owner: owner, p_lease_seconds: leaseSeconds, p_only_if_due: onlyIfDue });
    return rows[0] ?? null;
  }

  claimDue(owner: string, limit: number, leaseSeconds: number, maxQueued?: number): Promise<JobRow[]> {
    return this.#rpc("image_jobs_claim_due", {
      p_owner: owner,
      p_limit: limit,
      p_lease_seconds: leaseSeconds,
      p_max_queued: maxQueued ?? null,
    });
  }

  async usage(userId: string): Promise<UserUsage> {
    const { data, error } = await this.client.rpc("image_jobs_user_usage", { p_user_id: userId });
    if (error) fail("read the user's usage", error);
    return toUsage((data as { active: unknown; last_day: unknown; oldest_in_day: unknown }[])?.[0]);
  }

  lineage(id: string, userId: string): Promise<JobRow[]> {
    return this.#rpc("image_jobs_lineage", { p_id: id, p_user_id: userId });
  }

  async findByIdempotencyKey(userId: string, key: string): Promise<JobRow | null> {
    const { data, error } = await this.client.from(TABLE).select("*").eq("user_id", userId).eq("idempotency_key", key)
      .maybeSingle();
    if (error) fail("look up the idempotency key", error);
    return data ? toJobRow(data) : null;
  }

  async transition(id: string, owner: string, from: JobStatus[], patch: JobPatch): Promise<JobRow | null> {
    const rows = await this.#rpc("image_jobs_transition", { p_id: id, p_owner: owner, p_from: from, p_patch: patch });
    return rows[0] ?? null;
  }

  async activeCounts(): Promise<Record<string, number>> {
    const { data, error } = await this.client.rpc("image_jobs_active_counts");
    if (error) fail("count active jobs", error);
    return Object.fromEntries(((data ?? []) as { model: string; active: number }[]).map((row) => [row.model, Number(row.active)]));
  }

  async queueDepth(): Promise<number> {
    const { data, error } = await this.client.rpc("image_jobs_queue_depth");
    if (error) fail("count queued jobs", error);
    return Number(data ?? 0);
  }

  async statusCounts(): Promise<{ model: string; status: string; jobs: number }[]> {
    const { data, error } = await this.client.rpc("image_jobs_status_counts");
    if (error) fail("count jobs by status", error);
    return ((data ?? []) as { model: string; status: string; jobs: unknown }[])
      .map((row) => ({ model: row.model, status: row.status, jobs: Number(row.jobs) }));
  }

  async close(): Promise<void> {}
}
