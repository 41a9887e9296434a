/**
 * Establishes who is calling and puts their user id on the context (`c.get("userId")`).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./api-error.ts";

export type AuthVariables = { userId: string };

/** Resolves a request to a user id, or throws an ApiError (401). */
export type Authenticator = (request: Request) => Promise<string>;

export interface AuthenticateOptions {
  /** How callers prove who they are; see shared/auth/. */
  authenticator?: Authenticator;
  /** Local use only: with no authenticator, every caller is this user. */
  anonymousUserId?: string;
}

export function authenticate(options: AuthenticateOptions): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    if (options.authenticator) {
      c.set("userId", await options.authenticator(c.req.raw));
    } else if (options.anonymousUserId) {
      c.set("userId", options.anonymousUserId);
    } else {
      throw new ApiError(401, "unauthorized", "Cannot authenticate the request: no authentication is configured");
    }
    await next();
  };
}
