/**
 * What every function's app installs first: the one error handler, the JSON 404, and request
 * logging with a request id on every line.
 *
 * @module
 */
import type { Hono } from "hono";
import type { Logger } from "../log/logger.ts";
import { createErrorHandler, notFoundHandler } from "./error-handler.ts";
import { requestLogging } from "./request-logging.ts";

// deno-lint-ignore no-explicit-any
export function useCommonHandlers(app: Hono<any>, log: Logger): void {
  app.onError(createErrorHandler({ log: (message, fields) => log.error("http.unhandled_error", { message, ...fields }) }));
  app.notFound(notFoundHandler);
  app.use("*", requestLogging({ log }));
}
