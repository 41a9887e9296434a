// What must never leak, checked across every endpoint: another user's job, the provider key,
// webhook secrets, stack traces in error bodies; and keys, tokens and image base64 in logs.
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { startHarness } from "./support/harness.ts";
import { makePng, toBase64 } from "./support/test-images.ts";

const STACK = /\bat [\w$.<>]+ \(|\.ts:\d+:\d+|Error: .*\n\s+at /;

Deno.test("no response reveals another user's job, the BFL key, a webhook secret or a stack trace", async () => {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const h = await startHarness({
    env: {
      ALLOW_ANONYMOUS: "false",
      SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }),
      METRICS_SECRET: "metrics-secret",
      SWEEPER_SECRET: "sweeper-secret",
    },
  });
  try {
    const token = (sub: string) =>
      new SignJWT({ sub, role: "authenticated" }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuedAt()
        .setExpirationTime("1h").sign(privateKey);
    const alice = await token(crypto.randomUUID());
    const bob = await token(crypto.randomUUID());
    const webhookSecret = "whsec-" + crypto.randomUUID();
    h.services.runner.webhookFor = (job) => ({ url: `${h.base.replace("/images", "")}/bfl-webhook/jobs/${job.id}`, secret: webhookSecret });

    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    const image = toBase64(makePng(32, 32));
    const created = await fetch(`${h.base}/jobs`, {
      method: "POST",
      headers: { ...auth(alice), "content-type": "application/json" },
      body: JSON.stringify({ prompt: "private", input_image: image }),
    });
    const job = (await created.json()).job;

    const requests: [string, RequestInit][] = [
      [`${h.base}/jobs/${job.id}`, { headers: auth(alice) }],
      [`${h.base}/jobs/${job.id}`, { headers: auth(bob) }],
      [`${h.base}/jobs/${job.id}/lineage`, { headers: auth(bob) }],
      [`${h.base}/jobs`, { headers: auth(alice) }],
      [`${h.base}/jobs`, { headers: auth(bob) }],
      [`${h.base}/jobs/${job.id}`, {}],
      [`${h.base}/jobs/${job.id}`, { headers: { authorization: "Bearer a.b.c" } }],
      [`${h.base}/jobs`, { method: "POST", headers: { ...auth(alice), "content-type": "application/json" }, body: "{broken" }],
      [`${h.base}/jobs`, { method: "POST", headers: { ...auth(alice), "content-type": "application/json" }, body: JSON.stringify({ prompt: "x", input_image: "!!" }) }],
      [`${h.base}/jobs`, { method: "POST", headers: { ...auth(alice), "content-type": "application/json" }, body: JSON.stringify({ prompt: "x", input_job_id: crypto.randomUUID() }) }],
      [`${h.base}/health`, {}],
      [`${h.base}/openapi.json`, {}],
      [`${h.base}/metrics`, { headers: { authorization: "Bearer metrics-secret" } }],
      [`${h.base}/files/../../etc/passwd`, {}],
      [`${h.base}/files/results/x.png?expires=1&signature=abc`, {}],
      [`${h.base.replace("/images", "")}/bfl-webhook/jobs/${job.id}`, { method: "POST", body: "{}", headers: { "x-webhook-secret": "wrong" } }],
      [`${h.base}/nope`, {}],
    ];
    for (const [url, init] of requests) {
      const response = await fetch(url, init);
      const text = await response.text();
      const where = `${init.method ?? "GET"} ${url} → ${response.status}`;
      assert.ok(response.status < 500, `${where}: ${text}`);
      assert.ok(!text.includes(h.sim.key), `${where} reveals the BFL key`);
      assert.ok(!text.includes(webhookSecret), `${where} reveals the webhook secret`);
      assert.ok(!STACK.test(text), `${where} carries a stack trace: ${text}`);
      assert.ok(!text.includes(image.slice(0, 200)), `${where} echoes image base64`);
      if (init.headers && (init.headers as Record<string, string>).authorization === `Bearer ${bob}`) {
        assert.ok(!text.includes(job.id) || response.status === 404, `${where} shows Alice's job to Bob`);
        assert.ok(!text.includes("private"), `${where} shows Alice's prompt to Bob`);
      }
    }

    const logs = h.logs.join("\n");
    for (const secret of [h.sim.key, alice, bob, webhookSecret, "metrics-secret", "sweeper-secret"]) {
      assert.ok(!logs.includes(secret), `a log line contains a secret (${secret.slice(0, 8)}…)`);
    }
    assert.ok(!/[A-Za-z0-9+/]{200,}/.test(logs), "a log line contains base64");
  } finally {
    await h.close();
  }
});
