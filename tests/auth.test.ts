// Who is calling: Supabase access tokens (JWKS / legacy HS256), server keys acting for a user,
// and the anonymous local user — through real HTTP against the harness, plus the authenticator
// directly for the anonymous cases.
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { createAuthenticator } from "../shared/auth/create-authenticator.ts";
import { ApiError } from "../shared/http/api-error.ts";
import { type Harness, startHarness } from "./support/harness.ts";

const KID = "test-key-1";
const SERVER_KEY = "server-key-1";
const USER_A = "11111111-1111-4111-8111-111111111111";
const USER_B = "22222222-2222-4222-8222-222222222222";
const ANON_USER = "33333333-3333-4333-8333-333333333333";

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

interface TokenOptions {
  sub?: string | null;
  role?: string;
  key?: PrivateKey;
  kid?: string;
  expiresAt?: string | number;
  issuedAt?: number;
}

/** The live signing key (published in the harness's JWKS) and an impostor reusing its kid. */
const live = await generateKeyPair("RS256");
const impostor = await generateKeyPair("RS256");
const publicJwk: JWK = { ...(await exportJWK(live.publicKey)), kid: KID, alg: "RS256", use: "sig" };

async function rsToken(options: TokenOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = { role: options.role ?? "authenticated" };
  const sub = options.sub === undefined ? USER_A : options.sub;
  if (sub !== null) claims.sub = sub;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: options.kid ?? KID });
  if (options.issuedAt !== undefined) jwt.setIssuedAt(options.issuedAt);
  else jwt.setIssuedAt();
  return await jwt.setExpirationTime(options.expiresAt ?? "1h").sign(
    options.key ?? live.privateKey,
  );
}

async function hsToken(secret: string, sub = USER_A): Promise<string> {
  return await new SignJWT({ sub, role: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const createJob = (
  base: string,
  headers: Record<string, string>,
  prompt = "a lighthouse at dusk",
) =>
  fetch(`${base}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ prompt }),
  });

/** Asserts a 401 with the documented error shape; returns the body text. */
async function expect401(
  response: Response,
  code: string | undefined,
  secrets: string[] = [],
): Promise<string> {
  const text = await response.text();
  assert.equal(response.status, 401, text);
  const body = JSON.parse(text);
  assert.equal(typeof body.error, "object", text);
  assert.equal(typeof body.error.code, "string", text);
  assert.equal(typeof body.error.message, "string", text);
  assert.ok(body.error.message.length > 0);
  if (code !== undefined) assert.equal(body.error.code, code, text);
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `the error body must not echo the credential: ${text}`);
    // Not even a recognisable piece of it (the signature part is the sensitive one).
    const signature = secret.split(".").at(-1)!;
    if (signature.length >= 16) {
      assert.ok(!text.includes(signature), `the error body echoes the signature: ${text}`);
    }
  }
  return text;
}

function jwtHarness(): Promise<Harness> {
  return startHarness({
    env: {
      ALLOW_ANONYMOUS: "false",
      SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk] }),
      SERVER_API_KEYS: SERVER_KEY,
    },
  });
}

async function rejectsBadTokens(h: Harness) {
  await expect401(await fetch(`${h.base}/jobs`), "missing_token");
  await expect401(await createJob(h.base, {}), "missing_token");

  const malformed = "abc.def.ghi";
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(malformed) }), "invalid_token", [
    malformed,
  ]);

  const now = Math.floor(Date.now() / 1000);
  const expired = await rsToken({ issuedAt: now - 7200, expiresAt: now - 3600 });
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(expired) }), "token_expired", [
    expired,
  ]);

  const forged = await rsToken({ key: impostor.privateKey });
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(forged) }), "invalid_signature", [
    forged,
  ]);
  // A forged token cannot create jobs either, and reaches BFL not at all.
  await expect401(await createJob(h.base, bearer(forged)), "invalid_signature", [forged]);

  const unknownKid = await rsToken({ kid: "not-a-published-kid" });
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(unknownKid) }), undefined, [
    unknownKid,
  ]);

  const anon = await rsToken({ role: "anon" });
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(anon) }), undefined, [anon]);

  const noSub = await rsToken({ sub: null });
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(noSub) }), undefined, [noSub]);

  const notUuidSub = await rsToken({ sub: "not-a-uuid" });
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(notUuidSub) }), undefined, [
    notUuidSub,
  ]);

  // HS256 is refused when no legacy secret is configured (no alg confusion with the RSA key).
  const hs = await hsToken("whatever-secret-nobody-configured");
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(hs) }), "invalid_token", [hs]);

  // An unsigned token ("alg": "none") is never accepted.
  const header = btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "");
  const payload = btoa(JSON.stringify({ sub: USER_A, role: "authenticated", exp: now + 3600 }))
    .replace(/=+$/, "");
  const unsigned = `${header}.${payload}.`;
  await expect401(await fetch(`${h.base}/jobs`, { headers: bearer(unsigned) }), undefined);

  const denied = await fetch(`${h.base}/jobs`);
  assert.match(denied.headers.get("www-authenticate") ?? "", /^Bearer/);
  await denied.body?.cancel();

  assert.equal(h.sim.submissions.length, 0, "nothing reached BFL");
}

async function isolatesUsers(h: Harness) {
  const tokenA = await rsToken({ sub: USER_A });
  const tokenB = await rsToken({ sub: USER_B });

  const created = await createJob(h.base, bearer(tokenA));
  assert.equal(created.status, 202, await created.clone().text());
  const accepted = await created.json();
  const jobUrl: string = accepted.url;
  assert.match(jobUrl, /\/images\/jobs\/[0-9a-f-]{36}$/);

  const own = await fetch(jobUrl, { headers: bearer(tokenA) });
  assert.equal(own.status, 200);
  const ownBody = await own.json();
  assert.equal(ownBody.id, accepted.id);

  const listA = await (await fetch(`${h.base}/jobs`, { headers: bearer(tokenA) })).json();
  assert.deepEqual(listA.data.map((job: { id: string }) => job.id), [accepted.id]);

  // B reading A's job: exactly what B gets for a job that never existed (no existence oracle).
  const foreign = await fetch(jobUrl, { headers: bearer(tokenB) });
  assert.equal(foreign.status, 404);
  const foreignBody = await foreign.json();
  assert.equal(foreignBody.error.code, "job_not_found");
  const unknownId = crypto.randomUUID();
  const unknown = await fetch(`${h.base}/jobs/${unknownId}`, { headers: bearer(tokenB) });
  assert.equal(unknown.status, 404);
  const unknownBody = await unknown.json();
  const normalise = (body: unknown, id: string) =>
    JSON.parse(JSON.stringify(body).replaceAll(id, "<id>"));
  assert.deepEqual(normalise(foreignBody, accepted.id), normalise(unknownBody, unknownId));

  const listB = await (await fetch(`${h.base}/jobs`, { headers: bearer(tokenB) })).json();
  assert.deepEqual(listB.data, []);

  // Without credentials the job is not readable at all.
  await expect401(await fetch(jobUrl), "missing_token");
}

async function serverKeys(h: Harness) {
  const tokenA = await rsToken({ sub: USER_A });
  const createdByA = await createJob(h.base, bearer(tokenA));
  assert.equal(createdByA.status, 202);
  const jobA = await createdByA.json();

  const asA = { apikey: SERVER_KEY, "x-user-id": USER_A };
  const read = await fetch(jobA.url, { headers: asA });
  assert.equal(read.status, 200);
  assert.equal((await read.json()).id, jobA.id);

  // The server key also works as the bearer credential.
  const readViaBearer = await fetch(jobA.url, {
    headers: { ...bearer(SERVER_KEY), "x-user-id": USER_A },
  });
  assert.equal(readViaBearer.status, 200);
  await readViaBearer.body?.cancel();

  const createdByServer = await createJob(h.base, asA, "made by the app's backend");
  assert.equal(createdByServer.status, 202, await createdByServer.clone().text());
  const serverJob = await createdByServer.json();
  // Owned by A: A's own token sees it, and A's list has both jobs.
  const viaToken = await fetch(serverJob.url, { headers: bearer(tokenA) });
  assert.equal(viaToken.status, 200);
  await viaToken.body?.cancel();
  const listA = await (await fetch(`${h.base}/jobs`, { headers: bearer(tokenA) })).json();
  const idsA = listA.data.map((job: { id: string }) => job.id);
  assert.ok(idsA.includes(jobA.id) && idsA.includes(serverJob.id), JSON.stringify(idsA));

  // Acting for B, the server sees none of A's jobs.
  const asB = { apikey: SERVER_KEY, "x-user-id": USER_B };
  const foreign = await fetch(jobA.url, { headers: asB });
  assert.equal(foreign.status, 404);
  assert.equal((await foreign.json()).error.code, "job_not_found");
  assert.deepEqual((await (await fetch(`${h.base}/jobs`, { headers: asB })).json()).data, []);

  await expect401(
    await fetch(`${h.base}/jobs`, { headers: { apikey: SERVER_KEY } }),
    "missing_user",
    [SERVER_KEY],
  );
  await expect401(
    await fetch(`${h.base}/jobs`, { headers: { apikey: SERVER_KEY, "x-user-id": "not-a-uuid" } }),
    "missing_user",
    [SERVER_KEY],
  );
  await expect401(
    await fetch(`${h.base}/jobs`, { headers: { apikey: "server-key-2", "x-user-id": USER_A } }),
    undefined,
    [
      "server-key-2",
    ],
  );
  await expect401(
    await fetch(jobA.url, { headers: { apikey: "server-key-2", "x-user-id": USER_A } }),
    undefined,
    [
      "server-key-2",
    ],
  );
  await expect401(
    await createJob(h.base, { apikey: "server-key-2", "x-user-id": USER_A }),
    undefined,
    ["server-key-2"],
  );
  // A wrong key as the bearer credential (not JWT-shaped) is refused too.
  await expect401(
    await fetch(`${h.base}/jobs`, { headers: { ...bearer("server-key-2"), "x-user-id": USER_A } }),
    undefined,
    [
      "server-key-2",
    ],
  );
  // x-user-id alone proves nothing.
  await expect401(await fetch(jobA.url, { headers: { "x-user-id": USER_A } }), "missing_token");
}

async function publicRoutes(h: Harness) {
  const health = await fetch(`${h.base}/health`);
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, "ok");
  const openapi = await fetch(`${h.base}/openapi.json`);
  assert.equal(openapi.status, 200);
  const document = await openapi.json();
  assert.equal(document.openapi, "3.1.0");
  assert.ok(document.paths && Object.keys(document.paths).length > 0);
}

Deno.test("JWKS project with server keys, anonymous access off", async (t) => {
  const h = await jwtHarness();
  try {
    await t.step(
      "JWKS: missing, malformed, expired, forged, anon-role and subject-less tokens are 401s",
      () => rejectsBadTokens(h),
    );
    await t.step(
      "JWKS: a signed-in user creates and reads own jobs; other users see 404 and empty lists",
      () => isolatesUsers(h),
    );
    await t.step(
      "server keys: apikey + x-user-id acts for that user; missing user and wrong keys are 401s",
      () => serverKeys(h),
    );
    await t.step("health and openapi.json need no credentials", () => publicRoutes(h));
  } finally {
    await h.close();
  }
});

Deno.test("HS256 legacy secret: tokens signed with it are accepted, others are not", async () => {
  const secret = "legacy-jwt-secret-with-at-least-32-characters!";
  const h = await startHarness({ env: { ALLOW_ANONYMOUS: "false", SUPABASE_JWT_SECRET: secret } });
  try {
    const good = await hsToken(secret, USER_A);
    const created = await createJob(h.base, bearer(good));
    assert.equal(created.status, 202, await created.clone().text());
    const job = await created.json();
    const read = await fetch(job.url, { headers: bearer(good) });
    assert.equal(read.status, 200);
    assert.equal((await read.json()).id, job.id);

    const bad = await hsToken("some-other-secret-also-32-characters-long!!", USER_A);
    await expect401(await fetch(job.url, { headers: bearer(bad) }), "invalid_signature", [
      bad,
      secret,
    ]);
    await expect401(await createJob(h.base, bearer(bad)), "invalid_signature", [bad, secret]);

    // Without a JWKS, RS256 tokens cannot be verified here.
    const rs = await rsToken({ sub: USER_A });
    await expect401(await fetch(job.url, { headers: bearer(rs) }), "invalid_token", [rs]);
  } finally {
    await h.close();
  }
});

// --- The authenticator on its own: anonymous access ------------------------------------------

async function rejection(promise: Promise<string>): Promise<ApiError> {
  try {
    const user = await promise;
    assert.fail(`expected a 401, got user ${user}`);
  } catch (error) {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${error}`);
    assert.equal(error.status, 401);
    return error;
  }
}

const request = (headers: Record<string, string> = {}) =>
  new Request("http://x/images/jobs", { headers });

Deno.test("anonymous access: no credentials become the anonymous user only when enabled", async () => {
  const enabled = createAuthenticator({ jwks: { keys: [publicJwk] }, anonymousUserId: ANON_USER });
  assert.equal(await enabled(request()), ANON_USER);
  // A valid token still identifies its user, not the anonymous one.
  assert.equal(await enabled(request(bearer(await rsToken({ sub: USER_B })))), USER_B);

  const disabled = createAuthenticator({ jwks: { keys: [publicJwk] } });
  assert.equal((await rejection(disabled(request()))).code, "missing_token");
});

Deno.test("anonymous access: a bad token is a 401, never silently downgraded to anonymous", async () => {
  const auth = createAuthenticator({
    jwks: { keys: [publicJwk] },
    anonymousUserId: ANON_USER,
    serverKeys: [SERVER_KEY],
  });
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, string, string | undefined][] = [
    ["malformed", "abc.def.ghi", "invalid_token"],
    ["expired", await rsToken({ issuedAt: now - 7200, expiresAt: now - 3600 }), "token_expired"],
    ["forged", await rsToken({ key: impostor.privateKey }), "invalid_signature"],
    ["anon role", await rsToken({ role: "anon" }), undefined],
    ["no subject", await rsToken({ sub: null }), undefined],
    ["HS256 without a secret", await hsToken("unconfigured-secret"), "invalid_token"],
  ];
  for (const [name, token, code] of cases) {
    const error = await rejection(auth(request(bearer(token))));
    if (code !== undefined) assert.equal(error.code, code, name);
    assert.ok(!error.message.includes(token), `${name}: the message must not echo the token`);
  }
  // A server key without a user is refused too, not treated as anonymous.
  assert.equal((await rejection(auth(request({ apikey: SERVER_KEY })))).code, "missing_user");
});
