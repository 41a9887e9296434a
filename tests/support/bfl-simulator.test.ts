/**
 * Tests of the BFL simulator itself, all through real HTTP (fetch against Deno.serve).
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { type BflSimulator, type SimulatorOptions, startBflSimulator } from "./bfl-simulator.ts";
import { crc32, makeJpeg, makeLargePng, makePng, toBase64 } from "./test-images.ts";

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];
const IMAGE_B64 = toBase64(makePng(16, 16));

async function withSim(
  options: SimulatorOptions,
  fn: (sim: BflSimulator) => Promise<void>,
): Promise<void> {
  const sim = await startBflSimulator(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

interface Answer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

async function submit(
  sim: BflSimulator,
  model: string,
  body: unknown,
  key: string | null = sim.key,
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers["x-key"] = key;
  const res = await fetch(`${sim.apiUrl}/v1/${model}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // non-JSON bodies (e.g. the HTML 502) stay as text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

async function poll(sim: BflSimulator, url: string, key: string | null = sim.key): Promise<Answer> {
  const res = await fetch(url, { headers: key === null ? {} : { "x-key": key } });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the status is no longer Pending (or the deadline passes). */
async function pollUntilDone(
  sim: BflSimulator,
  pollingUrl: string,
  deadlineMs = 3000,
): Promise<Answer> {
  const deadline = Date.now() + deadlineMs;
  while (true) {
    const answer = await poll(sim, pollingUrl);
    if (answer.status === 200 && answer.body.status !== "Pending") return answer;
    if (Date.now() > deadline) throw new Error(`Task still pending after ${deadlineMs} ms`);
    await sleep(15);
  }
}

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/** Local webhook receiver; `received` fills as POSTs arrive. */
function startReceiver() {
  const received: { headers: Headers; body: Record<string, unknown> }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    received.push({ headers: req.headers, body: await req.json() });
    return new Response("ok");
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    received,
    /** Resolves once `count` webhooks arrived. */
    async waitFor(count: number, timeoutMs = 3000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`Only ${received.length} of ${count} webhooks arrived`);
        }
        await sleep(10);
      }
    },
    close: () => server.shutdown(),
  };
}

// ------------------------------------------------------------------ images

Deno.test("test-images: PNG and JPEG bytes are valid", () => {
  const png = makePng(5, 3, 7);
  assert.ok(startsWith(png, PNG_MAGIC));
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(view.getUint32(16), 5); // IHDR width
  assert.equal(view.getUint32(20), 3); // IHDR height
  // Every chunk's CRC checks out and the file ends with IEND.
  let offset = 8;
  const types: string[] = [];
  while (offset < png.length) {
    const length = view.getUint32(offset);
    types.push(new TextDecoder().decode(png.subarray(offset + 4, offset + 8)));
    assert.equal(view.getUint32(offset + 8 + length), crc32(png, offset + 4, offset + 8 + length));
    offset += 12 + length;
  }
  assert.deepEqual(types, ["IHDR", "IDAT", "IEND"]);
  assert.notDeepEqual(makePng(5, 3, 1), png);

  const decoded = jpeg.decode(makeJpeg(20, 10), { useTArray: true });
  assert.equal(decoded.width, 20);
  assert.equal(decoded.height, 10);
});

Deno.test("test-images: makeLargePng hits the target size fast", () => {
  const started = performance.now();
  const big = makeLargePng(20 * 1024 * 1024);
  assert.ok(performance.now() - started < 1000, "20 MB should take well under a second");
  assert.equal(big.length, 20 * 1024 * 1024);
  assert.ok(startsWith(big, PNG_MAGIC));
  assert.equal(new TextDecoder().decode(big.subarray(big.length - 8, big.length - 4)), "IEND");
  assert.ok(makeLargePng(10).length < 200, "below the minimum it returns the smallest PNG");
});

// ------------------------------------------------------------------ happy path

Deno.test("submit, poll Pending then Ready, download a PNG from the delivery host", async () => {
  await withSim({ readyAfterMs: 150 }, async (sim) => {
    const submitted = await submit(sim, "flux-kontext-pro", {
      prompt: "A red fox",
      output_format: "png",
      seed: 42,
      aspect_ratio: "16:9",
      extra_unknown_field: true, // ignored, like pydantic
    });
    assert.equal(submitted.status, 200);
    const { id, polling_url: pollingUrl, cost, input_mp: inputMp, output_mp: outputMp } =
      submitted.body;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(pollingUrl, `${sim.pollOrigin}/v1/get_result?id=${id}`);
    assert.notEqual(new URL(pollingUrl).host, new URL(sim.apiUrl).host);
    assert.equal(cost, 4);
    assert.equal(inputMp, 0);
    assert.equal(outputMp, 1.05);
    assert.equal(sim.submissions.length, 1);
    assert.equal(sim.submissions[0].body.extra_unknown_field, true);
    assert.equal(sim.activeTasks(), 1);

    const pending = await poll(sim, pollingUrl);
    assert.equal(pending.status, 200);
    assert.equal(pending.body.status, "Pending");
    assert.equal(pending.body.result, null);
    assert.ok(pending.body.progress >= 0 && pending.body.progress < 1);
    assert.deepEqual(Object.keys(pending.body), [
      "id",
      "status",
      "result",
      "progress",
      "details",
      "preview",
    ]);

    // A rebuilt polling URL on the submit host lands on a cluster that does not know the task.
    const misrouted = await poll(sim, `${sim.apiUrl}/v1/get_result?id=${id}`);
    assert.equal(misrouted.status, 200);
    assert.equal(misrouted.body.status, "Task not found");
    assert.equal(sim.counts.misroutedPolls, 1);

    const ready = await pollUntilDone(sim, pollingUrl);
    assert.equal(ready.body.status, "Ready");
    assert.equal(ready.body.result.prompt, "A red fox");
    assert.equal(ready.body.result.seed, 42);
    const sample = new URL(ready.body.result.sample);
    assert.equal(sample.origin, sim.deliveryOrigin);
    assert.equal(sample.pathname, `/results/${id}/sample.png`);
    assert.equal(sim.activeTasks(), 0);
    assert.equal(sim.task(id)?.status, "Ready");

    const res = await fetch(sample); // no x-key needed
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.ok(startsWith(bytes, PNG_MAGIC));
    assert.equal(new DataView(bytes.buffer).getUint32(16), 64);
    assert.equal(sim.counts.downloads, 1);
  });
});

Deno.test("bagel with a base64 image defaults to a decodable JPEG", async () => {
  await withSim({ readyAfterMs: 20, imageSize: 32 }, async (sim) => {
    const submitted = await submit(sim, "flux-bagel-alpha", {
      prompt: "Make it snow",
      input_image: `data:image/png;base64,${IMAGE_B64}`,
      steps: 50,
      guidance: 3,
    });
    assert.equal(submitted.status, 200);
    assert.equal(submitted.body.input_mp, 1.05);
    const ready = await pollUntilDone(sim, submitted.body.polling_url);
    assert.match(ready.body.result.sample, /\/sample\.jpeg\?se=\d+&sig=/);
    const res = await fetch(ready.body.result.sample);
    assert.equal(res.headers.get("content-type"), "image/jpeg");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.ok(startsWith(bytes, JPEG_MAGIC));
    const decoded = jpeg.decode(bytes, { useTArray: true });
    assert.equal(decoded.width, 32);
    assert.equal(decoded.height, 32);
  });
});

Deno.test("kontext-max costs 8 and accepts image URLs and several input images", async () => {
  await withSim({}, async (sim) => {
    const submitted = await submit(sim, "flux-kontext-max", {
      prompt: "Combine",
      input_image: "https://example.com/a.png",
      input_image_2: IMAGE_B64,
    });
    assert.equal(submitted.status, 200);
    assert.equal(submitted.body.cost, 8);
    assert.equal(submitted.body.input_mp, 2.1);
    assert.equal(sim.activeTasks("flux-kontext-max"), 1);
    assert.equal(sim.activeTasks("flux-kontext-pro"), 0);
  });
});

// ------------------------------------------------------------------ auth, routing, validation

Deno.test("403 without or with a wrong key, 404 for unknown paths", async () => {
  await withSim({}, async (sim) => {
    for (const key of [null, "wrong"]) {
      const answer = await submit(sim, "flux-kontext-pro", { prompt: "x" }, key);
      assert.equal(answer.status, 403);
      assert.deepEqual(answer.body, { detail: "Not authenticated - Invalid Authentication" });
    }
    const ok = await submit(sim, "flux-kontext-pro", { prompt: "x" });
    const unauthorizedPoll = await poll(sim, ok.body.polling_url, null);
    assert.equal(unauthorizedPoll.status, 403);

    const unknown = await submit(sim, "flux-kontext", { prompt: "x" });
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body, { detail: "Not Found" });

    const unknownId = await poll(sim, `${sim.pollOrigin}/v1/get_result?id=nope`);
    assert.equal(unknownId.status, 200);
    assert.equal(unknownId.body.status, "Task not found");
    assert.equal(unknownId.body.result, null);
    assert.deepEqual(sim.counts.rejected, { "403": 2 });
    assert.equal(sim.counts.accepted, 1);
  });
});

Deno.test("422 in FastAPI shape for invalid Kontext bodies", async () => {
  await withSim({}, async (sim) => {
    const locs = async (body: unknown) => {
      const answer = await submit(sim, "flux-kontext-pro", body);
      assert.equal(answer.status, 422, JSON.stringify(body));
      for (const issue of answer.body.detail) {
        assert.equal(typeof issue.msg, "string");
        assert.equal(typeof issue.type, "string");
      }
      // deno-lint-ignore no-explicit-any
      return answer.body.detail.map((issue: any) => `${issue.loc.join(".")}:${issue.type}`);
    };

    assert.deepEqual(await locs({ prompt: "x", aspect_ratio: "8:3" }), [
      "body.aspect_ratio:value_error",
    ]);
    assert.deepEqual(await locs({ prompt: "x", aspect_ratio: "wide" }), [
      "body.aspect_ratio:string_pattern_mismatch",
    ]);
    assert.deepEqual(await locs({}), ["body.prompt:missing"]);
    assert.deepEqual(await locs({ prompt: 5 }), ["body.prompt:string_type"]);
    assert.deepEqual(
      await locs({
        prompt: "x",
        seed: 1.5,
        output_format: "webp",
        safety_tolerance: 7,
        prompt_upsampling: "yes",
        webhook_url: "ftp://example.com/hook",
        input_image: "not base64!",
        input_image_3: 12,
      }),
      [
        "body.input_image:value_error",
        "body.input_image_3:string_type",
        "body.seed:int_from_float",
        "body.output_format:enum",
        "body.webhook_url:url_scheme",
        "body.prompt_upsampling:bool_type",
        "body.safety_tolerance:less_than_equal",
      ],
    );
    assert.deepEqual(
      await locs({ prompt: "x", webhook_url: `https://x.test/${"a".repeat(2100)}` }),
      [
        "body.webhook_url:string_too_long",
      ],
    );
    assert.deepEqual(await locs([1]), ["body:model_attributes_type"]);

    // The edges of the documented ranges are accepted.
    for (const aspect_ratio of ["3:7", "7:3", "21:9", "1:1"]) {
      assert.equal(
        (await submit(sim, "flux-kontext-pro", { prompt: "x", aspect_ratio })).status,
        200,
      );
    }
    const nulls = await submit(sim, "flux-kontext-pro", {
      prompt: "x",
      seed: null,
      aspect_ratio: null,
      input_image: null,
      webhook_url: null,
    });
    assert.equal(nulls.status, 200);
    assert.equal(sim.counts.rejected["422"], 7);
  });
});

Deno.test("422 for bagel without input_image and with steps=151", async () => {
  await withSim({}, async (sim) => {
    const answer = await submit(sim, "flux-bagel-alpha", { prompt: "x", steps: 151, guidance: 0 });
    assert.equal(answer.status, 422);
    assert.deepEqual(answer.body.detail.map((i: { loc: string[] }) => i.loc), [
      ["body", "input_image"],
      ["body", "guidance"],
      ["body", "steps"],
    ]);
    assert.equal(answer.body.detail[0].type, "missing");
    assert.equal(answer.body.detail[0].msg, "Field required");
    assert.equal(answer.body.detail[2].type, "less_than_equal");
    assert.equal(answer.body.detail[2].msg, "Input should be less than or equal to 150");
  });
});

// ------------------------------------------------------------------ concurrency

Deno.test("429 at the 25th active task and at the 7th kontext-max task", async () => {
  await withSim({ readyAfterMs: 60_000 }, async (sim) => {
    for (let i = 0; i < 6; i++) {
      assert.equal((await submit(sim, "flux-kontext-max", { prompt: `max ${i}` })).status, 200);
    }
    const maxLimited = await submit(sim, "flux-kontext-max", { prompt: "max 7" });
    assert.equal(maxLimited.status, 429);
    assert.equal(maxLimited.headers.get("retry-after"), "1");
    assert.match(maxLimited.body.detail, /concurrency limit of 6 active tasks/);

    for (let i = 6; i < 24; i++) {
      assert.equal((await submit(sim, "flux-kontext-pro", { prompt: `pro ${i}` })).status, 200);
    }
    assert.equal(sim.activeTasks(), 24);
    const limited = await submit(sim, "flux-kontext-pro", { prompt: "pro 25" });
    assert.equal(limited.status, 429);
    assert.equal(
      limited.body.detail,
      "You have exceeded your concurrency limit of 24 active tasks. Please retry once a previous task finishes.",
    );
    assert.equal(sim.counts.accepted, 24);
    assert.equal(sim.counts.rejected["429"], 2);
  });
});

Deno.test("finished tasks free their concurrency slot", async () => {
  await withSim({ readyAfterMs: 40 }, async (sim) => {
    for (let i = 0; i < 6; i++) await submit(sim, "flux-kontext-max", { prompt: "x" });
    assert.equal((await submit(sim, "flux-kontext-max", { prompt: "x" })).status, 429);
    await sleep(60);
    assert.equal(sim.activeTasks(), 0);
    assert.equal((await submit(sim, "flux-kontext-max", { prompt: "x" })).status, 200);
  });
});

// ------------------------------------------------------------------ faults

Deno.test("fault submitStatus answers the next N submits with that status", async () => {
  await withSim({}, async (sim) => {
    sim.faults.submitStatus = { status: 402, times: 2 };
    for (let i = 0; i < 2; i++) {
      const answer = await submit(sim, "flux-kontext-pro", { prompt: "x" });
      assert.equal(answer.status, 402);
      assert.deepEqual(answer.body, { detail: "Insufficient credits" });
    }
    assert.equal(sim.faults.submitStatus, undefined, "used-up faults are removed");
    assert.equal((await submit(sim, "flux-kontext-pro", { prompt: "x" })).status, 200);

    const expected: [number, (body: unknown) => void][] = [
      [500, (b) => assert.deepEqual(b, { detail: "Internal Server Error" })],
      [503, (b) => assert.deepEqual(b, { detail: "Service Unavailable" })],
      [502, (b) => assert.match(String(b), /502 Bad Gateway/)],
      [429, (b) => assert.match((b as { detail: string }).detail, /concurrency limit/)],
      [422, (b) => assert.ok(Array.isArray((b as { detail: unknown[] }).detail))],
    ];
    for (const [status, check] of expected) {
      sim.faults.submitStatus = { status: status as 500 };
      const answer = await submit(sim, "flux-kontext-pro", { prompt: "x" });
      assert.equal(answer.status, status);
      check(answer.body);
    }
    assert.equal(sim.counts.accepted, 1);
    assert.equal(sim.submissions.length, 1);
  });
});

Deno.test("fault submitDropConnection closes the socket before or after accepting", async () => {
  await withSim({ readyAfterMs: 60_000 }, async (sim) => {
    sim.faults.submitDropConnection = {};
    await assert.rejects(submit(sim, "flux-kontext-pro", { prompt: "x" }));
    assert.equal(sim.submissions.length, 0);
    assert.equal(sim.counts.rejected.dropped, 1);

    sim.faults.submitDropConnection = { afterAccept: true, times: 1 };
    await assert.rejects(submit(sim, "flux-kontext-max", { prompt: "billed anyway" }));
    assert.equal(sim.submissions.length, 1, "the task exists although the client saw no answer");
    assert.equal(sim.submissions[0].cost, 8);
    assert.equal(sim.activeTasks("flux-kontext-max"), 1);

    assert.equal((await submit(sim, "flux-kontext-pro", { prompt: "x" })).status, 200);
  });
});

Deno.test("faults submitDelayMs and pollDelayMs slow the answers", async () => {
  await withSim({}, async (sim) => {
    sim.faults.submitDelayMs = 80;
    let started = Date.now();
    const submitted = await submit(sim, "flux-kontext-pro", { prompt: "x" });
    assert.ok(Date.now() - started >= 75);
    sim.faults.pollDelayMs = 80;
    started = Date.now();
    await poll(sim, submitted.body.polling_url);
    assert.ok(Date.now() - started >= 75);
  });
});

Deno.test("fault pollStatus answers the next N polls with an HTTP error", async () => {
  await withSim({}, async (sim) => {
    const { body } = await submit(sim, "flux-kontext-pro", { prompt: "x" });
    sim.faults.pollStatus = { status: 503, times: 2 };
    assert.equal((await poll(sim, body.polling_url)).status, 503);
    assert.equal((await poll(sim, body.polling_url)).status, 503);
    assert.equal((await poll(sim, body.polling_url)).status, 200);
    sim.faults.pollStatus = { status: 502 };
    const bad = await poll(sim, body.polling_url);
    assert.equal(bad.status, 502);
    assert.match(bad.body, /Bad Gateway/);
    assert.equal(sim.counts.polls, 4);
  });
});

Deno.test("fault outcome ends the next N tasks moderated, failed or lost", async () => {
  await withSim({ readyAfterMs: 10 }, async (sim) => {
    const cases: [string, (body: Record<string, unknown>) => void][] = [
      [
        "Request Moderated",
        (b) => assert.deepEqual(b.details, { "Moderation Reasons": ["Protected Content"] }),
      ],
      [
        "Content Moderated",
        (b) =>
          assert.ok(Array.isArray((b.details as Record<string, unknown>)["Moderation Reasons"])),
      ],
      ["Error", (b) => assert.equal(typeof (b.details as Record<string, unknown>).error, "string")],
      ["Task not found", (b) => assert.equal(b.details, null)],
    ];
    for (const [status, check] of cases) {
      sim.faults.outcome = { status: status as "Error" };
      const submitted = await submit(sim, "flux-kontext-pro", { prompt: "x" });
      const done = await pollUntilDone(sim, submitted.body.polling_url);
      assert.equal(done.body.status, status);
      assert.equal(done.body.result, null);
      check(done.body);
    }
    const normal = await submit(sim, "flux-kontext-pro", { prompt: "x" });
    assert.equal((await pollUntilDone(sim, normal.body.polling_url)).body.status, "Ready");
  });
});

Deno.test("prompt directives choose one task's outcome and timing", async () => {
  await withSim({ readyAfterMs: 10 }, async (sim) => {
    const moderated = await submit(sim, "flux-kontext-pro", {
      prompt: "cat [sim:request-moderated]",
    });
    const content = await submit(sim, "flux-kontext-pro", {
      prompt: "[sim:content-moderated] cat",
    });
    const failed = await submit(sim, "flux-kontext-pro", { prompt: "cat [sim:error]" });
    const slow = await submit(sim, "flux-kontext-pro", { prompt: "cat [sim:ready-after=300]" });
    assert.equal(
      (await pollUntilDone(sim, moderated.body.polling_url)).body.status,
      "Request Moderated",
    );
    assert.equal(
      (await pollUntilDone(sim, content.body.polling_url)).body.status,
      "Content Moderated",
    );
    assert.equal((await pollUntilDone(sim, failed.body.polling_url)).body.status, "Error");
    assert.equal((await poll(sim, slow.body.polling_url)).body.status, "Pending");
    assert.equal(sim.task(slow.body.id)?.readyAt, sim.task(slow.body.id)!.submittedAt + 300);
  });
});

Deno.test("fault sampleFailOnce fails each result's first download", async () => {
  await withSim({ readyAfterMs: 10 }, async (sim) => {
    sim.faults.sampleFailOnce = true;
    const submitted = await submit(sim, "flux-kontext-pro", { prompt: "x" });
    const { body } = await pollUntilDone(sim, submitted.body.polling_url);
    const first = await fetch(body.result.sample);
    assert.equal(first.status, 500);
    await first.body?.cancel();
    const second = await fetch(body.result.sample);
    assert.equal(second.status, 200);
    assert.ok(startsWith(new Uint8Array(await second.arrayBuffer()), JPEG_MAGIC));
  });
});

Deno.test("sample URLs expire after sampleTtlMs and reject a bad signature", async () => {
  await withSim({ readyAfterMs: 10, sampleTtlMs: 50 }, async (sim) => {
    const submitted = await submit(sim, "flux-kontext-pro", { prompt: "x" });
    const { body } = await pollUntilDone(sim, submitted.body.polling_url);
    const sample = new URL(body.result.sample);

    const forged = new URL(sample);
    forged.searchParams.set("se", String(Date.now() + 3_600_000)); // extend the expiry
    const forgedRes = await fetch(forged);
    assert.equal(forgedRes.status, 403);
    assert.match(await forgedRes.text(), /AuthenticationFailed/);

    await sleep(80);
    const expired = await fetch(sample);
    assert.equal(expired.status, 403);
    assert.equal(expired.headers.get("access-control-allow-origin"), null);
    const text = await expired.text();
    assert.match(text, /<Code>AuthenticationFailed<\/Code>/);
    assert.match(text, /Signature not valid in the specified time frame/);
  });
});

Deno.test("webhook POST carries the get_result shape and X-Webhook-Secret", async () => {
  const receiver = startReceiver();
  try {
    await withSim({ readyAfterMs: 30 }, async (sim) => {
      const submitted = await submit(sim, "flux-kontext-pro", {
        prompt: "hooked",
        webhook_url: receiver.url,
        webhook_secret: "s3cr3t value",
      });
      await receiver.waitFor(1); // nobody polls: the simulator's own timer sends it
      const [hook] = receiver.received;
      assert.equal(hook.headers.get("x-webhook-secret"), "s3cr3t value");
      assert.equal(hook.headers.get("content-type"), "application/json");
      assert.equal(hook.body.id, submitted.body.id);
      assert.equal(hook.body.status, "Ready");
      assert.deepEqual(Object.keys(hook.body), [
        "id",
        "status",
        "result",
        "progress",
        "details",
        "preview",
      ]);
      assert.match(
        (hook.body.result as { sample: string }).sample,
        /^http:\/\/127\.0\.0\.1:\d+\/results\//,
      );
      assert.equal(sim.submissions[0].webhookUrl, receiver.url);
      assert.equal(sim.counts.webhooksSent, 1);

      // Moderated tasks notify too; no secret header when none was given.
      await submit(sim, "flux-kontext-pro", {
        prompt: "[sim:content-moderated]",
        webhook_url: receiver.url,
      });
      await receiver.waitFor(2);
      assert.equal(receiver.received[1].body.status, "Content Moderated");
      assert.equal(receiver.received[1].headers.get("x-webhook-secret"), null);
    });
  } finally {
    await receiver.close();
  }
});

Deno.test("webhook faults: duplicate, drop, delay", async () => {
  const receiver = startReceiver();
  try {
    await withSim({ readyAfterMs: 10 }, async (sim) => {
      sim.faults.webhook = "duplicate";
      const dup = await submit(sim, "flux-kontext-pro", { prompt: "x", webhook_url: receiver.url });
      await receiver.waitFor(2);
      assert.deepEqual(receiver.received.map((r) => r.body.id), [dup.body.id, dup.body.id]);

      sim.faults.webhook = "drop";
      const dropped = await submit(sim, "flux-kontext-pro", {
        prompt: "x",
        webhook_url: receiver.url,
      });
      await pollUntilDone(sim, dropped.body.polling_url);
      await sleep(50);
      assert.equal(receiver.received.length, 2);
      assert.deepEqual(sim.task(dropped.body.id)?.webhookAttempts, []);

      sim.faults.webhook = "normal";
      sim.faults.webhookDelayMs = 150;
      const started = Date.now();
      await submit(sim, "flux-kontext-pro", { prompt: "x", webhook_url: receiver.url });
      await receiver.waitFor(3);
      assert.ok(Date.now() - started >= 150);
    });
  } finally {
    await receiver.close();
  }
});

Deno.test("failed webhook deliveries are recorded, not thrown", async () => {
  await withSim({ readyAfterMs: 10 }, async (sim) => {
    // A port that nothing listens on: bind one, note it, release it.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const submitted = await submit(sim, "flux-kontext-pro", {
      prompt: "x",
      webhook_url: `http://127.0.0.1:${port}/hook`,
    });
    const deadline = Date.now() + 2000;
    while (!sim.task(submitted.body.id)?.webhookAttempts[0]?.error && Date.now() < deadline) {
      await sleep(10);
    }
    assert.ok(sim.task(submitted.body.id)?.webhookAttempts[0]?.error);
  });
});

// ------------------------------------------------------------------ lifecycle

Deno.test("close() cancels pending webhook timers and delays (sanitizers stay green)", async () => {
  const sim = await startBflSimulator({ readyAfterMs: 60_000 });
  await submit(sim, "flux-kontext-pro", { prompt: "x", webhook_url: "http://127.0.0.1:9/hook" });
  sim.faults.pollDelayMs = 60_000;
  const { body } = await submit(sim, "flux-kontext-pro", { prompt: "y" });
  const slowPoll = poll(sim, body.polling_url);
  await sleep(20); // let the poll reach its delay
  await sim.close();
  assert.equal((await slowPoll).status, 200);
  await sim.close(); // idempotent
});

Deno.test("reset() clears faults, counters, tasks and submissions", async () => {
  await withSim({ readyAfterMs: 60_000 }, async (sim) => {
    const faults = sim.faults;
    await submit(sim, "flux-kontext-pro", { prompt: "x", webhook_url: "http://127.0.0.1:9/hook" });
    await submit(sim, "flux-kontext-pro", { prompt: "x" }, null);
    sim.faults.sampleFailOnce = true;
    sim.reset();
    assert.equal(sim.faults, faults, "the same object, so references stay valid");
    assert.deepEqual(sim.faults, {});
    assert.equal(sim.submissions.length, 0);
    assert.equal(sim.activeTasks(), 0);
    assert.deepEqual(sim.counts, {
      submitRequests: 0,
      accepted: 0,
      polls: 0,
      misroutedPolls: 0,
      downloads: 0,
      webhooksSent: 0,
      rejected: {},
    });
  });
});

Deno.test("the CLI prints its origins as one JSON line and stops on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/bfl-simulator.ts", "--key", "cli-key"],
    cwd: new URL("../../", import.meta.url).pathname, // so deno.json and its import map apply
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += value;
  }
  const info = JSON.parse(line);
  assert.equal(info.key, "cli-key");
  const res = await fetch(`${info.apiUrl}/v1/flux-kontext-pro`, {
    method: "POST",
    headers: { "x-key": "cli-key", "content-type": "application/json" },
    body: JSON.stringify({ prompt: "x" }),
  });
  assert.equal(res.status, 200);
  assert.ok((await res.json()).polling_url.startsWith(info.pollOrigin));
  child.kill("SIGTERM");
  assert.equal((await child.status).code, 0);
  await reader.cancel();
});
