/**
 * Unit tests of shared/bfl/bfl-client.ts against the BFL simulator (real loopback HTTP) and tiny
 * local servers: what is sent, and how every answer or failure maps to an outcome.
 */
import assert from "node:assert/strict";
import { BflClient, type BflClientOptions } from "../shared/bfl/bfl-client.ts";
import { sniffImage } from "../shared/images/sniff-image.ts";
import { type BflSimulator, type SimulatorOptions, startBflSimulator } from "./support/bfl-simulator.ts";
import { makePng, toBase64 } from "./support/test-images.ts";

const PNG_B64 = toBase64(makePng(8, 8));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function clientFor(sim: BflSimulator, options: Partial<BflClientOptions> = {}): BflClient {
  return new BflClient({
    apiKey: sim.key,
    apiUrl: sim.apiUrl,
    alphaApiUrl: sim.apiUrl,
    trustedOrigins: [sim.pollOrigin, sim.deliveryOrigin],
    timeoutMs: 5_000,
    ...options,
  });
}

async function withSim(options: SimulatorOptions, fn: (sim: BflSimulator) => Promise<void>): Promise<void> {
  const sim = await startBflSimulator(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

interface Call {
  url: string;
  method: string;
  headers: Headers;
  redirect?: RequestRedirect;
}

/** A fetch that records every call and then really performs it. */
function fetchSpy(): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const spy: typeof fetch = (input, init) => {
    const options = (init ?? {}) as { method?: string; headers?: HeadersInit; redirect?: RequestRedirect };
    calls.push({
      url: input instanceof Request ? input.url : String(input),
      method: options.method ?? "GET",
      headers: new Headers(options.headers),
      redirect: options.redirect,
    });
    return fetch(input, init);
  };
  return { fetch: spy, calls };
}

interface LocalServer {
  origin: string;
  requests: Request[];
  close(): Promise<void>;
}

/** A loopback server that records requests (their bodies are read) and answers with `answer`. */
function localServer(answer: (req: Request) => Response | Promise<Response>): LocalServer {
  const requests: Request[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    requests.push(req);
    await req.arrayBuffer();
    return answer(req);
  });
  return { origin: `http://127.0.0.1:${server.addr.port}`, requests, close: () => server.shutdown() };
}

/** A port on which nothing listens (a listener is opened and closed again). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const body = (value: unknown) => JSON.stringify(value);

// ------------------------------------------------------------------ submit

Deno.test("submit() sends x-key and the JSON body to <apiUrl>/v1/<model>", async () => {
  await withSim({}, async (sim) => {
    const spy = fetchSpy();
    const client = clientFor(sim, { fetch: spy.fetch });
    const sent = { prompt: "a red fox", seed: 7, output_format: "png" };
    const outcome = await client.submit("flux-kontext-pro", body(sent));
    assert.equal(outcome.kind, "accepted");
    assert.equal(spy.calls.length, 1);
    const [call] = spy.calls;
    assert.equal(call.url, `${sim.apiUrl}/v1/flux-kontext-pro`);
    assert.equal(call.method, "POST");
    assert.equal(call.headers.get("x-key"), sim.key);
    assert.equal(call.headers.get("content-type"), "application/json");
    assert.equal(call.headers.get("authorization"), null, "BFL uses x-key, not a bearer token");
    assert.equal(call.redirect, "manual");
    assert.deepEqual(sim.submissions.map((s) => [s.model, s.body]), [["flux-kontext-pro", sent]]);
  });
});

Deno.test("submit() sends each model to its own path; flux-bagel-alpha goes to alphaApiUrl", async () => {
  const main = await startBflSimulator({});
  const alpha = await startBflSimulator({ key: main.key });
  try {
    const client = new BflClient({
      apiKey: main.key,
      apiUrl: main.apiUrl,
      alphaApiUrl: alpha.apiUrl,
      trustedOrigins: [],
    });
    assert.equal(client.submitUrl("flux-kontext-max"), `${main.apiUrl}/v1/flux-kontext-max`);
    assert.equal(client.submitUrl("flux-bagel-alpha"), `${alpha.apiUrl}/v1/flux-bagel-alpha`);

    const bagel = await client.submit("flux-bagel-alpha", body({ prompt: "make it blue", input_image: PNG_B64 }));
    assert.equal(bagel.kind, "accepted");
    if (bagel.kind === "accepted") assert.ok(bagel.pollingUrl.startsWith(`${alpha.pollOrigin}/`));
    const pro = await client.submit("flux-kontext-pro", body({ prompt: "a cat" }));
    const max = await client.submit("flux-kontext-max", body({ prompt: "a dog" }));
    assert.equal(pro.kind, "accepted");
    assert.equal(max.kind, "accepted");

    assert.deepEqual(alpha.submissions.map((s) => s.model), ["flux-bagel-alpha"]);
    assert.deepEqual(main.submissions.map((s) => s.model), ["flux-kontext-pro", "flux-kontext-max"]);
    assert.equal(main.counts.submitRequests, 2);
    assert.equal(alpha.counts.submitRequests, 1);
  } finally {
    await Promise.all([main.close(), alpha.close()]);
  }
});

Deno.test("submit() accepted: id, polling_url exactly as returned (another host), cost and megapixels", async () => {
  await withSim({ cost: { "flux-kontext-pro": 5 } }, async (sim) => {
    const client = clientFor(sim);
    const t2i = await client.submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(t2i.kind, "accepted");
    if (t2i.kind !== "accepted") return;
    assert.equal(t2i.id, sim.submissions[0].id);
    assert.equal(t2i.pollingUrl, `${sim.pollOrigin}/v1/get_result?id=${t2i.id}`);
    assert.notEqual(new URL(t2i.pollingUrl).host, new URL(sim.apiUrl).host, "the poll host is not the api host");
    assert.equal(t2i.cost, 5);
    assert.equal(t2i.inputMp, 0);
    assert.equal(t2i.outputMp, 1.05);

    const edit = await client.submit("flux-kontext-max", body({ prompt: "edit", input_image: PNG_B64 }));
    assert.equal(edit.kind, "accepted");
    if (edit.kind !== "accepted") return;
    assert.notEqual(edit.id, t2i.id);
    assert.equal(edit.cost, 8);
    assert.equal(edit.inputMp, 1.05);
    assert.equal(edit.outputMp, 1.05);
  });
});

Deno.test("submit() accepted without cost/megapixels or polling_url: nulls and the get_result fallback", async () => {
  const server = localServer(() => Response.json({ id: "task 1", cost: "4", input_mp: null }));
  try {
    const client = new BflClient({ apiKey: "k", apiUrl: server.origin, alphaApiUrl: server.origin, trustedOrigins: [] });
    const outcome = await client.submit("flux-kontext-pro", body({ prompt: "x" }));
    assert.deepEqual(outcome, {
      kind: "accepted",
      id: "task 1",
      pollingUrl: `${server.origin}/v1/get_result?id=task%201`,
      cost: null,
      inputMp: null,
      outputMp: null,
    });
  } finally {
    await server.close();
  }
});

Deno.test("submit() 402 → rejected provider_insufficient_credits", async () => {
  await withSim({}, async (sim) => {
    sim.faults.submitStatus = { status: 402 };
    const outcome = await clientFor(sim).submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(outcome.kind, "rejected");
    if (outcome.kind !== "rejected") return;
    assert.equal(outcome.httpStatus, 402);
    assert.equal(outcome.code, "provider_insufficient_credits");
    assert.equal(sim.counts.accepted, 0);
  });
});

Deno.test("submit() 422 → rejected provider_rejected_input with field names from loc, without \"body\"", async () => {
  await withSim({}, async (sim) => {
    const client = clientFor(sim);
    const outcome = await client.submit(
      "flux-kontext-pro",
      body({ prompt: "a cat", safety_tolerance: 9, seed: "abc", aspect_ratio: "8:3" }),
    );
    assert.equal(outcome.kind, "rejected");
    if (outcome.kind !== "rejected") return;
    assert.equal(outcome.httpStatus, 422);
    assert.equal(outcome.code, "provider_rejected_input");
    const fields = (outcome.fields ?? []).map((f) => f.field).sort();
    assert.deepEqual(fields, ["aspect_ratio", "safety_tolerance", "seed"]);
    for (const field of outcome.fields ?? []) {
      assert.equal(typeof field.message, "string");
      assert.ok(field.message.length > 0);
      assert.equal(typeof field.type, "string");
    }

    const missing = await client.submit("flux-bagel-alpha", body({ prompt: "no image" }));
    assert.equal(missing.kind === "rejected" && missing.fields?.map((f) => f.field).join(), "input_image");

    // A loc of just ["body"] (the whole body) keeps "body" as the field name.
    sim.faults.submitStatus = { status: 422 };
    const whole = await client.submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(whole.kind, "rejected");
    if (whole.kind === "rejected") {
      assert.deepEqual(whole.fields?.map((f) => f.field), ["body"]);
      assert.match(whole.fields?.[0].message ?? "", /Simulated validation failure/);
    }
    assert.equal(sim.counts.accepted, 0);
  });
});

Deno.test("submit() with a wrong key (403) → rejected provider_auth_failed", async () => {
  await withSim({}, async (sim) => {
    const outcome = await clientFor(sim, { apiKey: "wrong-key" }).submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(outcome.kind, "rejected");
    if (outcome.kind !== "rejected") return;
    assert.equal(outcome.httpStatus, 403);
    assert.equal(outcome.code, "provider_auth_failed");
    assert.equal(sim.counts.rejected["403"], 1);
    assert.equal(sim.counts.accepted, 0);
  });
});

Deno.test("submit() 429 → retry_later with Retry-After as retryAfterMs", async () => {
  await withSim({}, async (sim) => {
    const client = clientFor(sim);
    sim.faults.submitStatus = { status: 429 };
    const injected = await client.submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(injected.kind, "retry_later");
    if (injected.kind === "retry_later") {
      assert.equal(injected.retryAfterMs, 1000); // the simulator sends "retry-after: 1"
      assert.match(injected.reason, /concurrency limit/);
    }
  });
  // The real limit: 6 active flux-kontext-max tasks.
  await withSim({ readyAfterMs: 60_000 }, async (sim) => {
    const client = clientFor(sim);
    for (let i = 0; i < 6; i++) {
      assert.equal((await client.submit("flux-kontext-max", body({ prompt: `dog ${i}` }))).kind, "accepted");
    }
    const seventh = await client.submit("flux-kontext-max", body({ prompt: "dog 7" }));
    assert.equal(seventh.kind, "retry_later");
    if (seventh.kind === "retry_later") assert.equal(seventh.retryAfterMs, 1000);
    assert.equal(sim.counts.accepted, 6);
    // Another model still has room under the account-wide limit.
    assert.equal((await client.submit("flux-kontext-pro", body({ prompt: "cat" }))).kind, "accepted");
  });
});

const RETRY_AFTER: [string, string | null, (ms: number | undefined) => boolean][] = [
  ["seconds", "30", (ms) => ms === 30_000],
  ["zero seconds", "0", (ms) => ms === 0],
  ["an HTTP date two minutes ahead", new Date(Date.now() + 120_000).toUTCString(), (ms) => ms !== undefined && ms > 115_000 && ms <= 120_000],
  ["an HTTP date in the past", new Date(Date.now() - 60_000).toUTCString(), (ms) => ms === 0],
  ["garbage", "soon", (ms) => ms === undefined],
  ["no header", null, (ms) => ms === undefined],
];

for (const [name, header, check] of RETRY_AFTER) {
  Deno.test(`submit() 429 reads Retry-After given as ${name}`, async () => {
    const server = localServer(() =>
      Response.json({ detail: "busy" }, { status: 429, headers: header === null ? {} : { "retry-after": header } })
    );
    try {
      const client = new BflClient({ apiKey: "k", apiUrl: server.origin, alphaApiUrl: server.origin, trustedOrigins: [] });
      const outcome = await client.submit("flux-kontext-pro", body({ prompt: "x" }));
      assert.equal(outcome.kind, "retry_later");
      if (outcome.kind === "retry_later") {
        assert.ok(check(outcome.retryAfterMs), `retryAfterMs ${outcome.retryAfterMs}`);
        assert.equal(outcome.reason, "busy");
      }
    } finally {
      await server.close();
    }
  });
}

for (const status of [500, 502, 503] as const) {
  Deno.test(`submit() ${status} → unknown (the task may exist; never retried here)`, async () => {
    await withSim({}, async (sim) => {
      sim.faults.submitStatus = { status };
      const outcome = await clientFor(sim).submit("flux-kontext-pro", body({ prompt: "a cat" }));
      assert.equal(outcome.kind, "unknown");
      if (outcome.kind === "unknown") assert.match(outcome.message, new RegExp(String(status)));
      assert.equal(sim.counts.submitRequests, 1, "exactly one attempt");
    });
  });
}

Deno.test("submit() other 4xx (400, 404) → rejected provider_bad_request", async () => {
  for (const status of [400, 404]) {
    const server = localServer(() => Response.json({ detail: "nope" }, { status }));
    try {
      const client = new BflClient({ apiKey: "k", apiUrl: server.origin, alphaApiUrl: server.origin, trustedOrigins: [] });
      const outcome = await client.submit("flux-kontext-pro", body({ prompt: "x" }));
      assert.equal(outcome.kind, "rejected");
      if (outcome.kind === "rejected") {
        assert.equal(outcome.httpStatus, status);
        assert.equal(outcome.code, "provider_bad_request");
        assert.match(outcome.message, /nope/);
      }
    } finally {
      await server.close();
    }
  }
});

Deno.test("submit() 200 without a task id → unknown", async () => {
  const server = localServer(() => Response.json({ status: "ok" }));
  try {
    const client = new BflClient({ apiKey: "k", apiUrl: server.origin, alphaApiUrl: server.origin, trustedOrigins: [] });
    assert.equal((await client.submit("flux-kontext-pro", body({ prompt: "x" }))).kind, "unknown");
  } finally {
    await server.close();
  }
});

Deno.test("submit() dropped connection before the task is accepted → unknown", async () => {
  await withSim({}, async (sim) => {
    sim.faults.submitDropConnection = {};
    const outcome = await clientFor(sim).submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(outcome.kind, "unknown");
    if (outcome.kind === "unknown") assert.match(outcome.message, /did not complete/);
    assert.equal(sim.counts.accepted, 0);
    assert.equal(sim.counts.rejected.dropped, 1);
    assert.equal(sim.counts.submitRequests, 1, "not resubmitted");
  });
});

Deno.test("submit() dropped connection after the task is accepted (and billed) → unknown", async () => {
  await withSim({}, async (sim) => {
    sim.faults.submitDropConnection = { afterAccept: true };
    const outcome = await clientFor(sim).submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(outcome.kind, "unknown");
    if (outcome.kind === "unknown") assert.match(outcome.message, /did not complete/);
    assert.equal(sim.counts.accepted, 1, "the task exists on BFL's side");
    assert.equal(sim.counts.submitRequests, 1, "not resubmitted");
  });
});

Deno.test("submit() timing out after sending → unknown", async () => {
  await withSim({}, async (sim) => {
    sim.faults.submitDelayMs = 1_000;
    const outcome = await clientFor(sim, { timeoutMs: 100 }).submit("flux-kontext-pro", body({ prompt: "a cat" }));
    assert.equal(outcome.kind, "unknown");
  });
});

Deno.test("submit() connection refused (nothing listening) → retry_later", async () => {
  const origin = `http://127.0.0.1:${closedPort()}`;
  const client = new BflClient({ apiKey: "k", apiUrl: origin, alphaApiUrl: origin, trustedOrigins: [] });
  for (const model of ["flux-kontext-pro", "flux-bagel-alpha"] as const) {
    const outcome = await client.submit(model, body({ prompt: "x" }));
    assert.equal(outcome.kind, "retry_later", JSON.stringify(outcome));
    if (outcome.kind === "retry_later") {
      assert.match(outcome.reason, /Cannot reach BFL/);
      assert.equal(outcome.retryAfterMs, undefined);
    }
  }
});

// ------------------------------------------------------------------ poll

/** Submits `prompt` and returns the polling URL. */
async function submitted(client: BflClient, prompt: string, model: "flux-kontext-pro" | "flux-bagel-alpha" = "flux-kontext-pro") {
  const extra = model === "flux-bagel-alpha" ? { input_image: PNG_B64 } : {};
  const outcome = await client.submit(model, body({ prompt, ...extra }));
  assert.equal(outcome.kind, "accepted", JSON.stringify(outcome));
  return outcome.kind === "accepted" ? outcome.pollingUrl : "";
}

Deno.test("poll() maps Pending, then Ready with the sample URL", async () => {
  await withSim({ readyAfterMs: 250 }, async (sim) => {
    const spy = fetchSpy();
    const client = clientFor(sim, { fetch: spy.fetch });
    const pollingUrl = await submitted(client, "a cat");
    const pending = await client.poll(pollingUrl);
    assert.equal(pending.kind, "status");
    if (pending.kind !== "status") return;
    assert.equal(pending.status, "Pending");
    assert.equal(pending.sampleUrl, undefined);
    assert.equal(typeof pending.progress, "number");
    assert.equal(pending.details, null);
    const pollCall = spy.calls.at(-1)!;
    assert.equal(pollCall.url, pollingUrl, "polls the URL exactly as returned");
    assert.equal(pollCall.headers.get("x-key"), sim.key, "polls send x-key");

    await sleep(300);
    const ready = await client.poll(pollingUrl);
    assert.equal(ready.kind, "status");
    if (ready.kind !== "status") return;
    assert.equal(ready.status, "Ready");
    assert.ok(ready.sampleUrl?.startsWith(`${sim.deliveryOrigin}/results/`), ready.sampleUrl);
    assert.equal(ready.progress, null);
    assert.equal(sim.counts.polls, 2);
    assert.equal(sim.counts.misroutedPolls, 0);
  });
});

const TERMINAL: [string, string, unknown][] = [
  ["[sim:request-moderated]", "Request Moderated", { "Moderation Reasons": ["Protected Content"] }],
  ["[sim:content-moderated]", "Content Moderated", { "Moderation Reasons": ["NSFW"] }],
  ["[sim:error]", "Error", { error: "Simulated generation failure." }],
  ["[sim:task-not-found]", "Task not found", null],
];

for (const [directive, status, details] of TERMINAL) {
  Deno.test(`poll() maps "${status}" with its details and no sample`, async () => {
    await withSim({ readyAfterMs: 0 }, async (sim) => {
      const client = clientFor(sim);
      const outcome = await client.poll(await submitted(client, `a cat ${directive}`));
      assert.deepEqual(outcome, { kind: "status", status, sampleUrl: undefined, progress: null, details });
    });
  });
}

Deno.test("poll() of an id the region does not know → status \"Task not found\"", async () => {
  await withSim({}, async (sim) => {
    const outcome = await clientFor(sim).poll(`${sim.pollOrigin}/v1/get_result?id=${crypto.randomUUID()}`);
    assert.equal(outcome.kind === "status" && outcome.status, "Task not found");
  });
});

Deno.test("poll() follows the polling URL of the region that took a bagel task", async () => {
  await withSim({ readyAfterMs: 0 }, async (sim) => {
    const client = clientFor(sim);
    const outcome = await client.poll(await submitted(client, "make it blue", "flux-bagel-alpha"));
    assert.equal(outcome.kind === "status" && outcome.status, "Ready");
  });
});

const UNTRUSTED_URLS = [
  "https://evil.example/v1/get_result?id=1",
  "http://api.bfl.ai/v1/get_result?id=1",
  "https://user:pass@api.bfl.ai/v1/get_result?id=1",
  "https://bfl.ai.evil.com/v1/get_result?id=1",
  "not a url",
];

Deno.test("poll() of an untrusted polling URL → fatal, without any request", async () => {
  await withSim({}, async (sim) => {
    const spy = fetchSpy();
    const client = clientFor(sim, { fetch: spy.fetch });
    // A live loopback server that is simply not configured as trusted (the api host).
    const urls = [...UNTRUSTED_URLS, `${sim.apiUrl}/v1/get_result?id=1`];
    for (const url of urls) {
      const outcome = await client.poll(url);
      assert.equal(outcome.kind, "fatal", url);
      if (outcome.kind === "fatal") assert.equal(outcome.code, "untrusted_polling_url");
    }
    assert.equal(spy.calls.length, 0, "no request was made");
    assert.equal(sim.counts.misroutedPolls, 0);
  });
});

for (const status of [500, 502, 503] as const) {
  Deno.test(`poll() ${status} → transient, and the next poll works`, async () => {
    await withSim({ readyAfterMs: 0 }, async (sim) => {
      const client = clientFor(sim);
      const pollingUrl = await submitted(client, "a cat");
      sim.faults.pollStatus = { status };
      const failed = await client.poll(pollingUrl);
      assert.equal(failed.kind, "transient");
      if (failed.kind === "transient") assert.match(failed.message, new RegExp(String(status)));
      const next = await client.poll(pollingUrl);
      assert.equal(next.kind === "status" && next.status, "Ready");
    });
  });
}

Deno.test("poll() with a refused key (403) → fatal provider_auth_failed", async () => {
  await withSim({ readyAfterMs: 0 }, async (sim) => {
    const pollingUrl = await submitted(clientFor(sim), "a cat");
    const outcome = await clientFor(sim, { apiKey: "revoked" }).poll(pollingUrl);
    assert.equal(outcome.kind, "fatal");
    if (outcome.kind === "fatal") assert.equal(outcome.code, "provider_auth_failed");
  });
});

Deno.test("poll() timeout, refused connection or an answer without status → transient", async () => {
  await withSim({ readyAfterMs: 0 }, async (sim) => {
    const client = clientFor(sim, { timeoutMs: 100 });
    const pollingUrl = await submitted(client, "a cat");
    sim.faults.pollDelayMs = 1_000;
    assert.equal((await client.poll(pollingUrl)).kind, "transient");
  });
  const refused = `http://127.0.0.1:${closedPort()}`;
  const client = new BflClient({ apiKey: "k", apiUrl: refused, alphaApiUrl: refused, trustedOrigins: [refused] });
  assert.equal((await client.poll(`${refused}/v1/get_result?id=1`)).kind, "transient");

  const server = localServer(() => new Response("<html>maintenance</html>", { headers: { "content-type": "text/html" } }));
  try {
    const html = new BflClient({ apiKey: "k", apiUrl: server.origin, alphaApiUrl: server.origin, trustedOrigins: [server.origin] });
    assert.equal((await html.poll(`${server.origin}/v1/get_result?id=1`)).kind, "transient");
  } finally {
    await server.close();
  }
});

Deno.test({
  name: "poll() 404 → fatal, as PollOutcome documents",
  async fn() {
    const server = localServer(() => Response.json({ detail: "Not Found" }, { status: 404 }));
    try {
      const client = new BflClient({ apiKey: "k", apiUrl: server.origin, alphaApiUrl: server.origin, trustedOrigins: [server.origin] });
      assert.equal((await client.poll(`${server.origin}/v1/get_result?id=1`)).kind, "fatal");
    } finally {
      await server.close();
    }
  },
});

// ------------------------------------------------------------------ download

/** Submits, waits until Ready and returns the sample URL. */
async function readySample(sim: BflSimulator, client: BflClient, options: { png?: boolean } = {}): Promise<string> {
  const outcome = await client.submit("flux-kontext-pro", body({ prompt: "a cat", output_format: options.png ? "png" : "jpeg" }));
  assert.equal(outcome.kind, "accepted");
  if (outcome.kind !== "accepted") return "";
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    const polled = await client.poll(outcome.pollingUrl);
    if (polled.kind === "status" && polled.status !== "Pending") {
      assert.equal(polled.status, "Ready");
      assert.ok(polled.sampleUrl);
      return polled.sampleUrl;
    }
    await sleep(10);
  }
  throw new Error(`task still pending (${sim.submissions.length} submissions)`);
}

Deno.test("download() of a fresh sample → ok with the image bytes, without x-key", async () => {
  await withSim({ readyAfterMs: 0 }, async (sim) => {
    const spy = fetchSpy();
    const client = clientFor(sim, { fetch: spy.fetch });
    for (const png of [false, true]) {
      const sampleUrl = await readySample(sim, client, { png });
      const outcome = await client.download(sampleUrl);
      assert.equal(outcome.kind, "ok");
      if (outcome.kind !== "ok") return;
      const format = png ? "png" : "jpeg";
      assert.equal(outcome.contentType, `image/${format}`);
      const sniffed = sniffImage(outcome.bytes);
      assert.equal(sniffed?.format, format);
      assert.equal(sniffed?.width, 64);
      const call = spy.calls.at(-1)!;
      assert.equal(call.url, sampleUrl);
      assert.equal(call.headers.get("x-key"), null, "the API key is not sent to the delivery host");
    }
  });
});

Deno.test("download() of an expired sample → expired", async () => {
  await withSim({ readyAfterMs: 0, sampleTtlMs: 50 }, async (sim) => {
    const client = clientFor(sim);
    const sampleUrl = await readySample(sim, client);
    await sleep(100);
    const outcome = await client.download(sampleUrl);
    assert.equal(outcome.kind, "expired");
    if (outcome.kind === "expired") assert.match(outcome.message, /403/);
  });
});

Deno.test("download() of a tampered or unknown sample URL → expired (403/404)", async () => {
  await withSim({ readyAfterMs: 0 }, async (sim) => {
    const client = clientFor(sim);
    const sampleUrl = await readySample(sim, client);
    const tampered = new URL(sampleUrl);
    tampered.searchParams.set("se", String(Date.now() + 86_400_000));
    assert.equal((await client.download(tampered.href)).kind, "expired");
    assert.equal((await client.download(`${sim.deliveryOrigin}/results/nope/sample.jpeg`)).kind, "expired");
  });
});

Deno.test("download() with sampleFailOnce → transient, then ok", async () => {
  await withSim({ readyAfterMs: 0 }, async (sim) => {
    sim.faults.sampleFailOnce = true;
    const client = clientFor(sim);
    const sampleUrl = await readySample(sim, client);
    const first = await client.download(sampleUrl);
    assert.equal(first.kind, "transient");
    if (first.kind === "transient") assert.match(first.message, /500/);
    const second = await client.download(sampleUrl);
    assert.equal(second.kind, "ok");
    if (second.kind === "ok") assert.equal(sniffImage(second.bytes)?.format, "jpeg");
    assert.equal(sim.counts.downloads, 2);
  });
});

Deno.test("download() of an untrusted sample URL → fatal, without any request", async () => {
  await withSim({}, async (sim) => {
    const spy = fetchSpy();
    const client = clientFor(sim, { fetch: spy.fetch });
    const urls = [
      "https://evil.example/results/abc/sample.jpeg",
      "http://delivery-eu1.bfl.ai/results/abc/sample.jpeg",
      "https://delivery-eu1.bfl.ai.evil.com/results/abc/sample.jpeg",
      `${sim.apiUrl}/results/abc/sample.jpeg`,
      "file:///etc/passwd",
    ];
    for (const url of urls) {
      const outcome = await client.download(url);
      assert.equal(outcome.kind, "fatal", url);
      if (outcome.kind === "fatal") assert.equal(outcome.code, "untrusted_result_url");
    }
    assert.equal(spy.calls.length, 0, "no request was made");
    assert.equal(sim.counts.downloads, 0);
  });
});

Deno.test("download() refused connection → transient", async () => {
  const refused = `http://127.0.0.1:${closedPort()}`;
  const client = new BflClient({ apiKey: "k", apiUrl: refused, alphaApiUrl: refused, trustedOrigins: [refused] });
  assert.equal((await client.download(`${refused}/results/a/sample.jpeg`)).kind, "transient");
});

// ------------------------------------------------------------------ redirects

Deno.test("a redirect from a trusted host is not followed by submit, poll or download", async () => {
  // "elsewhere" is listed nowhere: no request may reach it, least of all with the API key.
  const elsewhere = localServer(() => Response.json({ id: "stolen", polling_url: "x", status: "Ready" }));
  const redirecting = localServer((req) => {
    const target = `${elsewhere.origin}${new URL(req.url).pathname}${new URL(req.url).search}`;
    return new Response(null, { status: req.method === "POST" ? 307 : 302, headers: { location: target } });
  });
  try {
    const client = new BflClient({
      apiKey: "secret-key",
      apiUrl: redirecting.origin,
      alphaApiUrl: redirecting.origin,
      trustedOrigins: [redirecting.origin],
    });
    const submitOutcome = await client.submit("flux-kontext-pro", body({ prompt: "x" }));
    assert.notEqual(submitOutcome.kind, "accepted");
    const pollOutcome = await client.poll(`${redirecting.origin}/v1/get_result?id=1`);
    assert.equal(pollOutcome.kind, "transient");
    const downloadOutcome = await client.download(`${redirecting.origin}/results/1/sample.jpeg`);
    assert.equal(downloadOutcome.kind, "transient");

    assert.equal(redirecting.requests.length, 3, "the trusted host was asked");
    assert.equal(elsewhere.requests.length, 0, "the redirect target got no request");
  } finally {
    await Promise.all([redirecting.close(), elsewhere.close()]);
  }
});
