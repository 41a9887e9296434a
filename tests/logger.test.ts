// Log lines: one JSON object each, secrets and long values (base64 images) never written.
import assert from "node:assert/strict";
import { createLogger } from "../shared/log/logger.ts";
import { requestContext } from "../shared/log/request-context.ts";

function capture(minLevel?: "debug" | "info") {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line)), minLevel, fields: { function: "images" } });
  return { log, lines };
}

Deno.test("logger redacts secret-named fields at any depth, URL credentials and long strings", () => {
  const { log, lines } = capture();
  const base64 = "A".repeat(10_000);
  log.info("test.event", {
    bfl_api_key: "bfl-secret",
    nested: { webhook_secret: "whsec", list: [{ authorization: "Bearer abc" }, "plain"], count: 3 },
    url: "postgres://user:hunter2@db:5432/app",
    input_image: base64,
    note: base64,
    at: new Date("2026-01-02T03:04:05.000Z"),
  });
  const text = JSON.stringify(lines[0]);
  for (const secret of ["bfl-secret", "whsec", "Bearer abc", "hunter2", base64]) assert.ok(!text.includes(secret), secret);
  const line = lines[0] as Record<string, any>;
  assert.equal(line.event, "test.event");
  assert.equal(line.level, "info");
  assert.equal(line.function, "images");
  assert.equal(line.bfl_api_key, "[redacted]");
  assert.equal(line.nested.webhook_secret, "[redacted]");
  assert.equal(line.nested.list[0].authorization, "[redacted]");
  assert.equal(line.nested.list[1], "plain");
  assert.equal(line.nested.count, 3);
  assert.equal(line.url, "postgres://[redacted]@db:5432/app");
  assert.equal(line.input_image, "[redacted]");
  assert.match(line.note, /^A{64}…\[10000 chars\]$/);
  assert.equal(line.at, "2026-01-02T03:04:05.000Z");
});

Deno.test("logger adds the request id of the request being handled, and honours the level", async () => {
  const { log, lines } = capture("info");
  await requestContext.run({ request_id: "req-1" }, async () => {
    await Promise.resolve();
    log.info("inside");
  });
  log.log("debug", "hidden");
  log.warn("outside");
  assert.deepEqual(lines.map((l) => [l.event, l.request_id]), [["inside", "req-1"], ["outside", undefined]]);
});

Deno.test("logger redacts flat lines too (the fast path without a replacer)", () => {
  const { log, lines } = capture();
  log.info("flat", { api_key: "k-123", url: "https://user:pw@example.com/x", note: "b".repeat(600), ok: "fine" });
  log.info("clean", { method: "GET", status: 200 });
  assert.equal(lines[0].api_key, "[redacted]");
  assert.equal(lines[0].url, "https://[redacted]@example.com/x");
  assert.match(lines[0].note as string, /…\[600 chars\]$/);
  assert.equal(lines[0].ok, "fine");
  assert.deepEqual({ method: lines[1].method, status: lines[1].status }, { method: "GET", status: 200 });
  assert.match(lines[1].time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});
