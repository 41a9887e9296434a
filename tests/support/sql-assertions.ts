// Assertions about PostgreSQL errors, shared by the database tests.
import assert from "node:assert/strict";

/**
 * Asserts `promise` (direct SQL through a driver) rejects with a Postgres error of SQLSTATE `code`
 * whose message matches `message`.
 */
export async function rejectsWithSqlState(promise: Promise<unknown>, code: string, message?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    const e = error as { code?: unknown; message?: unknown };
    assert.equal(
      e.code,
      code,
      `expected SQLSTATE ${code}, got ${String(e.code)}: ${String(e.message)}`,
    );
    if (message) assert.match(String(e.message), message);
    return true;
  });
}
