// The fault-injection soak (bench/soak-lib.ts) at --quick size on the embedded store: 60 jobs from
// 5 users through the BFL simulator with injected faults, the server a separate process SIGKILLed
// and restarted once. The soak's own targets are the assertions.
import assert from "node:assert/strict";
import { formatReport, runSoak, soakOptions } from "../bench/soak-lib.ts";

Deno.test("soak --quick on the embedded store: every job terminal, nothing lost, nothing paid or stored twice", async () => {
  const options = soakOptions("embedded", true);
  // A kill that catches a job mid-step parks it until its 60 s lease expires; the bound leaves room.
  options.deadlineMs = 3 * 60_000;
  const report = await runSoak(options);
  const summary = formatReport(report);
  assert.equal(report.restarts.length, 1, `the server was killed and restarted once\n${summary}`);
  assert.equal(report.server.incarnations, 2);
  assert.equal(report.jobs.created, report.jobs.planned, `every job was created once\n${summary}`);
  assert.equal(report.jobs.terminal, report.jobs.planned, `every job is terminal\n${summary}`);
  assert.equal(report.jobs.nonTerminalRows, 0, summary);
  assert.deepEqual(report.images.lost, [], `no image lost\n${summary}`);
  assert.deepEqual(report.provider.duplicateSubmissions, [], `no job submitted twice\n${summary}`);
  assert.deepEqual(report.uploads.duplicateUploads, [], `no result stored twice\n${summary}`);
  assert.deepEqual(report.jobs.createdTwice, [], `no job created twice\n${summary}`);
  assert.equal(report.images.succeededWithoutFile.length, 0, summary);
  assert.ok(report.pass, summary);
  // The faults really happened.
  assert.ok(report.client.networkErrors > 0, `clients saw the restart\n${summary}`);
  assert.ok(
    Object.values(report.provider.rejected).reduce((a, b) => a + b, 0) > 0,
    `submits were refused\n${summary}`,
  );
});
