// A function that cannot start answers 503 naming the settings at fault — never their values —
// and nothing the service logs carries the BFL key or an image's base64.
import assert from "node:assert/strict";
import { imagesAppFor } from "../shared/api/create-images-app.ts";
import { configFromEnv } from "../shared/config/load-config.ts";
import { startFunction } from "../shared/wiring/start-function.ts";
import { startHarness, waitForJob } from "./support/harness.ts";
import { makeJpeg, makePng, toBase64 } from "./support/test-images.ts";

const BFL_KEY = "sk-secret-123";
const PASSWORD = "hunter2";
const LONG_BASE64 = /[A-Za-z0-9+/]{200,}/;

interface Captured {
  lines: string[];
  text(): string;
}

/** Runs `body` with console output captured (and silenced); the console is restored afterwards. */
async function withConsoleCaptured<T>(body: (captured: Captured) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  const original = {
    log: console.log,
    error: console.error,
    warn: console.warn,
    info: console.info,
    debug: console.debug,
  };
  const capture = (...args: unknown[]) => {
    lines.push(args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg)).join(" "));
  };
  console.log = capture;
  console.error = capture;
  console.warn = capture;
  console.info = capture;
  console.debug = capture;
  try {
    return await body({ lines, text: () => lines.join("\n") });
  } finally {
    Object.assign(console, original);
  }
}

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface Answer {
  status: number;
  text: string;
  body: { error: { code: string; message: string; details?: { problems?: string[] } } };
  headers: Headers;
}

async function call(
  handler: (request: Request) => Response | Promise<Response>,
  path: string,
  init?: RequestInit,
): Promise<Answer> {
  const response = await handler(new Request(`http://x${path}`, init));
  const text = await response.text();
  return {
    status: response.status,
    text,
    body: text ? JSON.parse(text) : undefined,
    headers: response.headers,
  };
}

/** Starts the images function on `env` and checks that health and jobs both answer 503 naming `setting`. */
async function assertMisconfigured(
  env: Record<string, string>,
  setting: string,
  secrets: string[],
) {
  await withConsoleCaptured(async (console) => {
    const handler = await startFunction(imagesAppFor, configFromEnv(env));
    const answers = [
      await call(handler, "/images/health"),
      await call(handler, "/images/jobs"),
      await call(handler, "/images/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "x" }),
      }),
    ];
    for (const answer of answers) {
      assert.equal(answer.status, 503, answer.text);
      assert.equal(answer.body.error.code, "service_misconfigured", answer.text);
      assert.ok(
        answer.body.error.message.includes(setting),
        `the message names ${setting}: ${answer.text}`,
      );
      assert.ok(answer.body.error.details?.problems?.some((p) => p.includes(setting)), answer.text);
      assert.ok(answer.headers.get("retry-after"), "a 503 says when to retry");
      for (const secret of secrets) {
        assert.ok(!answer.text.includes(secret), `the response leaks a secret: ${answer.text}`);
      }
    }
    const logged = console.text();
    assert.ok(logged.includes("startup.failed"), `the failure is logged: ${logged}`);
    assert.ok(logged.includes(setting), `the log names ${setting}: ${logged}`);
    for (const secret of secrets) {
      assert.ok(!logged.includes(secret), `the log leaks a secret: ${logged}`);
    }
  });
}

Deno.test("SUPABASE_URL without a secret key → 503 naming SUPABASE_SECRET_KEY", async () => {
  await assertMisconfigured(
    { SUPABASE_URL: `http://127.0.0.1:${closedPort()}`, BFL_API_KEY: BFL_KEY },
    "SUPABASE_SECRET_KEY",
    [BFL_KEY],
  );
});

Deno.test("an unreachable DATABASE_URL → 503 naming DATABASE_URL, password in neither response nor logs", async () => {
  const url = `postgres://u:${PASSWORD}@127.0.0.1:${closedPort()}/db`;
  await assertMisconfigured({ DATABASE_URL: url, BFL_API_KEY: BFL_KEY }, "DATABASE_URL", [
    PASSWORD,
    BFL_KEY,
    url,
  ]);
});

Deno.test("SUPABASE_JWKS that is not JSON → 503 naming SUPABASE_JWKS", async () => {
  const jwks = '{"keys": [ {"kty": "RSA", "n": "not-closed"';
  await assertMisconfigured({ SUPABASE_JWKS: jwks, BFL_API_KEY: BFL_KEY }, "SUPABASE_JWKS", [
    BFL_KEY,
    jwks,
  ]);
  // Valid JSON that is not a key set is refused the same way.
  await assertMisconfigured({ SUPABASE_JWKS: '{"kty":"RSA"}' }, "SUPABASE_JWKS", []);
});

Deno.test({
  name: "a malformed DATABASE_URL → 503 naming DATABASE_URL, password in neither response nor logs",
  fn: async () => {
    const url = `postgres://u:${PASSWORD}@127.0.0.1:5432x/db`;
    await assertMisconfigured({ DATABASE_URL: url, BFL_API_KEY: BFL_KEY }, "DATABASE_URL", [
      PASSWORD,
      BFL_KEY,
      url,
    ]);
  },
});

Deno.test({
  name: "a valid embedded configuration serves health 200 and anonymous reads",
  // The handler startFunction returns owns a file-backed PGlite for the life of the process and has
  // no close hook (an Edge Function never shuts it down), so its file handle and timer outlive the test.
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "images-misconfig-" });
  try {
    await withConsoleCaptured(async (console) => {
      const handler = await startFunction(
        imagesAppFor,
        configFromEnv({ DATA_DIR: dataDir, ALLOW_ANONYMOUS: "true" }),
      );
      const health = await call(handler, "/images/health");
      assert.equal(health.status, 200, health.text);
      const body = JSON.parse(health.text);
      assert.equal(body.status, "ok");
      assert.equal(body.store, "embedded");
      assert.equal(body.provider_configured, false);

      const jobs = await call(handler, "/images/jobs");
      assert.equal(jobs.status, 200, jobs.text);
      assert.deepEqual(JSON.parse(jobs.text).data, []);

      // Without BFL_API_KEY reads work but creation says what is missing.
      const create = await call(handler, "/images/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "x" }),
      });
      assert.equal(create.status, 503, create.text);
      assert.equal(create.body.error.code, "provider_not_configured");
      assert.ok(create.body.error.message.includes("BFL_API_KEY"));
      assert.ok(!console.text().includes("startup.failed"), console.text());
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("nothing logged during full jobs contains the BFL key or an image's base64", async () => {
  const h = await startHarness({ simulator: { key: BFL_KEY } });
  try {
    assert.equal(h.services.config.bflApiKey, BFL_KEY, "the service really uses the secret key");
    const first = toBase64(makePng(96, 96, 11));
    const second = toBase64(makeJpeg(96, 96, 12));
    assert.ok(
      first.length > 1000 && second.length > 1000,
      "the inputs are long enough to be noticed",
    );
    const post = (body: unknown) =>
      fetch(`${h.base}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });

    // A successful edit with a raw base64 image and a data: URL.
    const created = await post({
      model: "flux-kontext-max",
      prompt: "Put the cat from image 1 into the scene of image 2",
      input_image: first,
      input_image_2: `data:image/jpeg;base64,${second}`,
    });
    assert.equal(created.status, 202, await created.clone().text());
    const job = await waitForJob((await created.json()).url);
    assert.equal(job.status, "succeeded");
    assert.equal(h.sim.submissions.length, 1, "BFL received the job (with the key)");

    // A submit BFL rejects, with the image in the request.
    h.sim.faults.submitStatus = { status: 422 };
    const rejected = await post({ prompt: "rejected", input_image: first });
    assert.equal(rejected.status, 422);
    await rejected.body?.cancel();

    // A submit that fails on BFL's side and is retried.
    h.sim.faults.submitStatus = { status: 500 };
    const retried = await post({ prompt: "retried", input_image: second });
    assert.equal(retried.status, 202, await retried.clone().text());
    await waitForJob((await retried.json()).url);

    assert.ok(h.logs.length > 0, "the service logged something");
    const logged = h.logs.join("\n");
    assert.ok(logged.includes("job.created"), "job events are in the captured logs");
    assert.ok(!logged.includes(BFL_KEY), "the BFL key is logged");
    const run = LONG_BASE64.exec(logged);
    assert.equal(run, null, `a long base64 run is logged: ${run?.[0].slice(0, 80)}…`);
    assert.ok(
      !logged.includes(first.slice(0, 64)) && !logged.includes(second.slice(0, 64)),
      "image base64 is logged",
    );
  } finally {
    await h.close();
  }
});
