/**
 * The app's single error handler: ApiError and Hono's HTTPException become the JSON error shape;
 * anything else is logged (without request bodies) and answered with a generic 500 that reveals no
 * stack trace or internal message.
 *
 * @module
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError } from "./api-error.ts";

export interface ErrorHandlerOptions {
  /** Where unexpected errors are reported; defaults to console.error. */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

export function createErrorHandler(options: ErrorHandlerOptions = {}): ErrorHandler {
  const log = options.log ??
    ((message, fields) => console.error(JSON.stringify({ level: "error", message, ...fields })));
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) {
      return c.json(errorBody(err.code, err.message, err.details), err.status, err.headers);
    }
    if (err instanceof HTTPException) {
      // Hono's own exceptions (e.g. from middleware) carry a status but no code.
      const status = err.status;
      const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "http_error";
      return c.json(errorBody(code, err.message || "Request failed"), status);
    }
    log("Unhandled error", {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      error: err.name,
      // The message only: stack traces stay out of responses, and bodies (base64) out of logs.
      detail: String(err.message).slice(0, 500),
    });
    return c.json(errorBody("internal_error", "The server failed to handle this request"), 500);
  };
}

export const notFoundHandler: NotFoundHandler = (c) =>
  c.json(errorBody("not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404);
