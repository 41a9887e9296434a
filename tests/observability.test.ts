// Logs and metrics as an operator sees them: a request id on every line, one event per job
// transition, and Prometheus metrics behind a secret.
import assert from "node:assert/strict";
import { startHarness, waitForJob } from "./support/harness.ts";

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

Deno.test("every log line of a request carries its id; the id is returned and can be supplied", async () => {
  const h = await startHarness();
  try {
    const supplied = await fetch(`${h.base}/jobs`, post({ prompt: "lines" }, { "x-request-id": "req-abc.123" }));
    assert.equal(supplied.headers.get("x-request-id"), "req-abc.123");
    const job = (await supplied.json()).job;
    const lines = h.logs.map((line) => JSON.parse(line));
    const ofRequest = lines.filter((line) => line.request_id === "req-abc.123");
    const events = ofRequest.map((line) => line.event);
    assert.ok(events.includes("job.created") && events.includes("job.transition") && events.includes("http.request"), String(events));
    // Everything that happened while handling it carries the id — nothing about this job lacks it.
    const untagged = lines.filter((line) => line.job_id === job.id && !line.request_id);
    assert.deepEqual(untagged, []);

    const generated = await fetch(`${h.base}/health`, { headers: { "x-request-id": "bad id with spaces" } });
    await generated.body?.cancel();
    assert.match(generated.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  } finally {
    await h.close();
  }
});

Deno.test("one transition event per status change of a job", async () => {
  const h = await startHarness();
  try {
    const accepted = await (await fetch(`${h.base}/jobs`, post({ prompt: "events" }))).json();
    await waitForJob(accepted.url);
    const transitions = h.logs.map((line) => JSON.parse(line))
      .filter((line) => line.event === "job.transition" && line.job_id === accepted.id)
      .map((line) => `${line.from}->${line.to}`);
    assert.deepEqual(transitions, ["queued->submitting", "submitting->running", "running->succeeded"]);
  } finally {
    await h.close();
  }
});

Deno.test("/images/metrics: Prometheus text behind a secret", async () => {
  const h = await startHarness({ env: { METRICS_SECRET: "m3trics" } });
  try {
    const ok = await waitForJob((await (await fetch(`${h.base}/jobs`, post({ prompt: "metrics" }))).json()).url);
    assert.equal(ok.status, "succeeded");
    h.sim.faults.submitStatus = { status: 402 };
    await (await fetch(`${h.base}/jobs`, post({ prompt: "broke" }))).body?.cancel();

    const none = await fetch(`${h.base}/metrics`);
    assert.equal(none.status, 401);
    await none.body?.cancel();
    const wrong = await fetch(`${h.base}/metrics`, { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();

    const response = await fetch(`${h.base}/metrics`, { headers: { authorization: "Bearer m3trics" } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
    const text = await response.text();
    assert.match(text, /^image_jobs\{model="flux-kontext-pro",status="succeeded"\} 1$/m);
    assert.match(text, /^image_jobs\{model="flux-kontext-pro",status="failed"\} 1$/m);
    assert.match(text, /^images_stored_total\{model="flux-kontext-pro"\} 1$/m);
    assert.match(text, new RegExp(`^image_bytes_stored_total\\{model="flux-kontext-pro"\\} ${(ok.image as { bytes: number }).bytes}$`, "m"));
    assert.match(text, /^bfl_request_duration_seconds_count\{operation="submit"\} 2$/m);
    assert.match(text, /^bfl_request_duration_seconds_bucket\{operation="poll",le="\+Inf"\} \d+$/m);
    assert.match(text, /^bfl_errors_total\{operation="submit",outcome="rejected:provider_insufficient_credits"\} 1$/m);
    assert.ok(!text.includes(h.sim.key), "no secrets in metrics");
  } finally {
    await h.close();
  }
});

Deno.test("/images/metrics answers 503 when no secret is configured", async () => {
  const h = await startHarness();
  try {
    const response = await fetch(`${h.base}/metrics`, { headers: { authorization: "Bearer anything" } });
    assert.equal(response.status, 503);
    assert.match((await response.json()).error.message, /METRICS_SECRET/);
  } finally {
    await h.close();
  }
});
