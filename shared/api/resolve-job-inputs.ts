/**
 * Turns `input_job_id*` fields into images: the caller's own succeeded jobs' stored outputs.
 * Anything else — another user's job, an unknown id, a job still running, failed or moderated —
 * is a 4xx naming the field, indistinguishable between "not yours" and "does not exist".
 *
 * @module
 */
import { ApiError } from "../http/api-error.ts";
import type { ResolvedImages } from "../jobs/job-service.ts";
import { IMAGE_SLOTS, JOB_INPUT_FIELDS } from "../jobs/models.ts";
import type { JobStore } from "../store/job-store.ts";
import type { CreateJobRequest } from "./job-schemas.ts";

export async function resolveJobInputs(
  request: CreateJobRequest,
  userId: string,
  store: JobStore,
  images: ResolvedImages,
): Promise<ResolvedImages> {
  const resolved: ResolvedImages = { ...images };
  for (const slot of IMAGE_SLOTS) {
    const field = JOB_INPUT_FIELDS[slot];
    const jobId = request[field];
    if (jobId === undefined) continue;
    const job = await store.get(jobId, userId);
    if (!job) throw ApiError.invalidField(field, `No job ${jobId} of yours`, 404, "input_job_not_found");
    if (job.status === "failed" || job.status === "moderated") {
      throw ApiError.invalidField(field, `Job ${jobId} ended ${job.status} and has no image`, 422, "input_job_has_no_image");
    }
    if (job.status !== "succeeded" || !job.result_path) {
      throw ApiError.invalidField(field, `Job ${jobId} is not finished yet (${job.status})`, 409, "input_job_not_finished");
    }
    resolved[slot] = {
      kind: "job",
      jobId,
      path: job.result_path,
      contentType: job.result_content_type ?? "image/jpeg",
      bytes: job.result_bytes ?? 0,
    };
  }
  return resolved;
}
