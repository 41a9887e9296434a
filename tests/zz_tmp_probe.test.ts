import assert from "node:assert/strict";
import { startHarness } from "./support/harness.ts";
Deno.test("probe: webhook before the submit answer is recorded", async () => {
  const h = await startHarness();
  try {
    h.services.runner.webhookFor = (job) => ({ url: `${h.base.replace("/images", "")}/bfl-webhook/jobs/${job.id}`, secret: "s".repeat(40) });
    h.services.runner.webhookPollIntervalMs = 60_000;
    const r = await fetch(`${h.base}/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "fast [sim:ready-after=0]" }) });
    const { id } = await r.json();
    await new Promise((res) => setTimeout(res, 1500));
    const job = await h.services.store.get(id);
    const task = h.sim.task(job!.provider_task_id!);
    console.log(job!.status, job!.provider_status, JSON.stringify(task?.webhookAttempts), h.sim.counts.polls, job!.next_check_at.getTime() - Date.now());
    console.log(h.logs.filter((l) => l.includes("webhook")).join("\n"));
  } finally {
    await h.close();
  }
});
