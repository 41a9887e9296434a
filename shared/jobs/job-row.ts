/**
 * A job as stored: the columns of public.image_jobs (supabase/migrations), in TypeScript.
 *
 * @module
 */
import type { ImageSlot, ModelId } from "./models.ts";

export type JobStatus = "queued" | "submitting" | "running" | "succeeded" | "failed" | "moderated";
export const ACTIVE_STATUSES: JobStatus[] = ["queued", "submitting", "running"];
/** Jobs BFL has (or may have): a status read refreshes these. */
export const IN_FLIGHT_STATUSES: JobStatus[] = ["submitting", "running"];
export const FINISHED_STATUSES: JobStatus[] = ["succeeded", "failed", "moderated"];

/** Where one image input lives: a copy in our storage, or the caller's URL (BFL fetches it). */
export type JobInput =
  | { slot: ImageSlot; kind: "upload"; path: string; content_type: string; bytes: number }
  | { slot: ImageSlot; kind: "url"; url: string }
  /** The stored output of an earlier job (iterative editing): no copy is made. */
  | { slot: ImageSlot; kind: "job"; job_id: string; path: string; content_type: string; bytes: number };

export interface JobRow {
  id: string;
  user_id: string;
  model: ModelId;
  params: Record<string, unknown>;
  inputs: JobInput[];
  status: JobStatus;
  provider_status: string | null;
  provider_task_id: string | null;
  polling_url: string | null;
  webhook_secret: string | null;
  cost: number | null;
  input_mp: number | null;
  output_mp: number | null;
  submit_attempts: number;
  poll_count: number;
  error_code: string | null;
  error_message: string | null;
  error_details: unknown;
  result_path: string | null;
  result_content_type: string | null;
  result_bytes: number | null;
  parent_job_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  next_check_at: Date;
  lease_owner: string | null;
  lease_until: Date | null;
  created_at: Date;
  updated_at: Date;
  submitted_at: Date | null;
  ready_at: Date | null;
  finished_at: Date | null;
  last_checked_at: Date | null;
}

/** The columns a caller supplies when creating a job; the database fills in the rest. */
export interface NewJob {
  id: string;
  user_id: string;
  model: ModelId;
  params: Record<string, unknown>;
  inputs: JobInput[];
  parent_job_id?: string | null;
  idempotency_key?: string | null;
  request_hash?: string | null;
}

/** Columns a transition may set (see image_jobs_transition in the migration). */
export type JobPatch = Partial<
  Pick<
    JobRow,
    | "status" | "provider_status" | "provider_task_id" | "polling_url" | "webhook_secret" | "cost"
    | "input_mp" | "output_mp" | "submit_attempts" | "poll_count" | "error_code" | "error_message"
    | "error_details" | "result_path" | "result_content_type" | "result_bytes" | "next_check_at"
    | "submitted_at" | "ready_at" | "finished_at" | "last_checked_at" | "lease_owner" | "lease_until"
  >
>;
