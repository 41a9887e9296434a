/**
 * Middleware that establishes who is calling and puts their user id on the context
 * (`c.get("userId")`). How credentials are checked is the authenticator's business
 * (shared/auth/create-authenticator.ts).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";

export type AuthVariables = { userId: string };

/** Resolves a request to a user id, or throws an ApiError (401). */
export type Authenticator = (request: Request) => Promise<string>;

export function authenticate(options: { authenticator: Authenticator }): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    c.set("userId", await options.authenticator(c.req.raw));
    await next();
  };
}
