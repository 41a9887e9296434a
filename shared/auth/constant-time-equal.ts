/**
 * Compares two secrets without leaking, through timing, how much of them matched. Both sides are
 * hashed first so inputs of different lengths take the same time too.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

export function constantTimeEqual(a: string, b: string): boolean {
  const left = createHash("sha256").update(a, "utf8").digest();
  const right = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(left, right);
}
