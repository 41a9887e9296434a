/**
 * Opaque keyset cursors for the job list: (created_at, id) of the last job of a page.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { ApiError } from "../http/api-error.ts";
import type { JobRow } from "../jobs/job-row.ts";

export function encodeCursor(job: Pick<JobRow, "created_at" | "id">): string {
  return Buffer.from(`${job.created_at.toISOString()}|${job.id}`).toString("base64url");
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [time, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const createdAt = new Date(time);
  if (!id || Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(id)) {
    throw ApiError.invalidField("cursor", "Not a cursor this API returned");
  }
  return { createdAt, id };
}
