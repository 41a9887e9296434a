// Iterative editing: edit a previous job's stored output by id, without downloading it, and read
// the chain of edits back.
import assert from "node:assert/strict";
import { decodeBase64 } from "../shared/images/base64.ts";
import { startHarness, waitForJob } from "./support/harness.ts";

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

Deno.test("edit a job's output by id, twice, and read the lineage", async () => {
  const h = await startHarness();
  try {
    const first = await waitForJob((await (await fetch(`${h.base}/jobs`, post({ prompt: "a woman with short black hair" }))).json()).url);
    assert.equal(first.status, "succeeded");
    const firstImage = new Uint8Array(await (await fetch((first.image as { url: string }).url)).arrayBuffer());

    const second = await waitForJob(
      (await (await fetch(`${h.base}/jobs`, post({ prompt: "now in the rain", input_job_id: first.id }))).json()).url,
    );
    assert.equal(second.status, "succeeded");
    assert.equal(second.parent_job_id, first.id);
    assert.deepEqual((second.inputs as { kind: string; job_id: string }[]).map((i) => [i.kind, i.job_id]), [["job", first.id]]);
    // BFL received exactly the stored output of the first job.
    assert.deepEqual(decodeBase64(h.sim.submissions[1].body.input_image as string), firstImage);

    // Multipart works too, and a reference slot can point at a job as well.
    const form = new FormData();
    form.set("prompt", "put her in the scene of image 2");
    form.set("input_job_id", String(second.id));
    form.set("input_job_id_2", String(first.id));
    const third = await waitForJob((await (await fetch(`${h.base}/jobs`, { method: "POST", body: form })).json()).url);
    assert.equal(third.status, "succeeded");
    assert.equal(third.parent_job_id, second.id);

    const lineage = await (await fetch(`${h.base}/jobs/${third.id}/lineage`)).json();
    assert.deepEqual(lineage.data.map((job: { id: string }) => job.id), [first.id, second.id, third.id]);
    assert.ok(lineage.data.every((job: { image: unknown }) => job.image !== null));

    const bagel = await fetch(`${h.base}/jobs`, post({ model: "flux-bagel-alpha", prompt: "lego", input_job_id: third.id }));
    assert.equal(bagel.status, 202, "an edit-only model accepts a job as its image");
    await bagel.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("input_job_id: unknown, another user's, unfinished or failed jobs are 4xx naming the field", async () => {
  const h = await startHarness({ env: { SERVER_API_KEYS: "srv" }, simulator: { readyAfterMs: 30_000 } });
  try {
    const as = (user: string) => ({ apikey: "srv", "x-user-id": user });
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const running = (await (await fetch(`${h.base}/jobs`, post({ prompt: "slow" }, as(alice)))).json()).id;
    const failed = (await (await fetch(`${h.base}/jobs`, post({ prompt: "[sim:request-moderated] no" }, as(alice)))).json()).id;
    await h.sql.query("update public.image_jobs set status = 'moderated', finished_at = now() where id = $1", [failed]);
    await h.sql.query("update public.image_jobs set status = 'succeeded', result_path = 'results/x/y.jpeg', finished_at = now() where id = $1", [running]);
    const alicesDone = running;
    const stillRunning = (await (await fetch(`${h.base}/jobs`, post({ prompt: "slow too" }, as(alice)))).json()).id;
    const rowsBefore = (await h.sql.query("select count(*)::int as n from public.image_jobs"))[0];
    const submitsBefore = h.sim.counts.submitRequests;

    const cases: [string, Record<string, unknown>, Record<string, string>, number, string][] = [
      ["an unknown job", { input_job_id: crypto.randomUUID() }, as(alice), 404, "input_job_id"],
      ["another user's job", { input_job_id: alicesDone }, as(bob), 404, "input_job_id"],
      ["a job still running", { input_job_id: stillRunning }, as(alice), 409, "input_job_id"],
      ["a moderated job", { input_job_id_2: failed, input_job_id: alicesDone }, as(alice), 422, "input_job_id_2"],
      ["both an image and a job for one slot", { input_job_id: alicesDone, input_image: "https://example.com/a.png" }, as(alice), 400, "input_job_id"],
      ["a reference slot bagel does not have", { model: "flux-bagel-alpha", input_job_id: alicesDone, input_job_id_2: alicesDone }, as(alice), 400, "input_job_id_2"],
      ["not a uuid", { input_job_id: "job-1" }, as(alice), 400, "input_job_id"],
    ];
    for (const [name, fields, headers, status, field] of cases) {
      const response = await fetch(`${h.base}/jobs`, post({ prompt: "edit", ...fields }, headers));
      const body = await response.json();
      assert.equal(response.status, status, `${name}: ${JSON.stringify(body)}`);
      assert.ok(body.error.details.some((d: { field: string }) => d.field === field), `${name} names ${field}`);
    }
    // The other user's job and a missing one read exactly alike.
    const notYours = await (await fetch(`${h.base}/jobs`, post({ prompt: "e", input_job_id: alicesDone }, as(bob)))).json();
    assert.equal(notYours.error.code, "input_job_not_found");
    assert.deepEqual((await h.sql.query("select count(*)::int as n from public.image_jobs"))[0], rowsBefore);
    assert.equal(h.sim.counts.submitRequests, submitsBefore);
    // Lineage of someone else's job is a 404 too.
    const lineage = await fetch(`${h.base}/jobs/${alicesDone}/lineage`, { headers: as(bob) });
    assert.equal(lineage.status, 404);
    await lineage.body?.cancel();
  } finally {
    await h.close();
  }
});
