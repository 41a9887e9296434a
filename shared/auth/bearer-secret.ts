/**
 * Whether a request's `Authorization: Bearer <secret>` matches a shared secret, compared in
 * constant time. For callers that are services, not users (pg_cron, a metrics scraper).
 *
 * @module
 */
import { constantTimeEqual } from "./constant-time-equal.ts";

export function hasBearerSecret(authorization: string | undefined, secret: string): boolean {
  const presented = /^Bearer\s+(.+)$/i.exec(authorization ?? "")?.[1] ?? "";
  return presented !== "" && constantTimeEqual(presented, secret);
}
