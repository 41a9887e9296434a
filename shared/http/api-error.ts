/**
 * The one error type the HTTP layer throws. It carries a machine-readable `code`, a human
 * `message` in sentence case, and `details` naming the fields at fault; the error handler turns
 * it into `{ "error": { "code", "message", "details" } }`.
 *
 * @module
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One problem with one input field. `field` is a dotted path such as `input_image_2`. */
export interface FieldIssue {
  field: string;
  message: string;
}

export interface ApiErrorOptions {
  details?: FieldIssue[] | Record<string, unknown>;
  headers?: Record<string, string>;
  cause?: unknown;
}

export class ApiError extends HTTPException {
  readonly code: string;
  readonly details?: FieldIssue[] | Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(status: ContentfulStatusCode, code: string, message: string, options: ApiErrorOptions = {}) {
    super(status, { message, cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.details = options.details;
    this.headers = options.headers;
  }

  /** A 400 for one field, the most common case. */
  static invalidField(field: string, message: string, status: ContentfulStatusCode = 400, code = "invalid_request"): ApiError {
    return new ApiError(status, code, `Invalid ${field}: ${message}`, { details: [{ field, message }] });
  }
}
