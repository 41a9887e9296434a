/**
 * The current request's id, available to every log line written while handling it — including
 * lines from the job runner deep below — without threading a logger through every call.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface RequestContext {
  request_id: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();
