// The supabase-js adapters (shared/supabase/) against a stand-in for Supabase's PostgREST and
// Storage HTTP APIs (tests/support/supabase-standin.ts) backed by a real PostgreSQL 15 server with
// the migrations applied: the stand-in's own behaviour, the ImageStorage adapter, and the whole
// `images` service built from SUPABASE_URL/SUPABASE_SECRET_KEY end to end with the BFL simulator.
// supabase-js runs unmodified; only its server is a stand-in. The JobStore contract over
// supabase-js (SupabaseJobStore) runs with the other adapters' in tests/job-store-contract.test.ts.
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import type postgres from "postgres";
import type { SupabaseClient } from "@supabase/supabase-js";
import { imagesAppFor } from "../shared/api/create-images-app.ts";
import { configFromEnv } from "../shared/config/load-config.ts";
import { decodeBase64 } from "../shared/images/base64.ts";
import { sniffImage } from "../shared/images/sniff-image.ts";
import { createMemoryLogger } from "../shared/log/logger.ts";
import { createAdminClient } from "../shared/supabase/create-admin-client.ts";
import { SupabaseImageStorage } from "../shared/supabase/supabase-image-storage.ts";
import { buildServices } from "../shared/wiring/build-services.ts";
import { startBflSimulator } from "./support/bfl-simulator.ts";
import { openSupabaseStandinDatabase } from "./support/job-store-backends.ts";
import { connect, stopSharedPostgresCluster } from "./support/postgres-cluster.ts";
import type { SupabaseStandin } from "./support/supabase-standin.ts";
import { makeJpeg, makePng } from "./support/test-images.ts";

const SERVICE_KEY = `sb_secret_standin_${crypto.randomUUID().replaceAll("-", "")}`;

// ---------------------------------------------------------------------------------------------
// Fixtures

interface SupabaseEnv {
  /** postgres.js on the test database as its owner (bypasses PostgREST, RLS and grants). */
  db: postgres.Sql;
  databaseUrl: string;
  standin: SupabaseStandin;
  /** The service's own admin client, pointed at the stand-in. */
  client: SupabaseClient;
}

/** A fresh migrated database on the shared cluster, a stand-in on it, and an admin client. */
async function withSupabase(body: (env: SupabaseEnv) => Promise<void>): Promise<void> {
  const { databaseUrl, standin, close } = await openSupabaseStandinDatabase(SERVICE_KEY);
  const db = connect(databaseUrl, { max: 4 });
  try {
    await body({ db, databaseUrl, standin, client: createAdminClient(standin.url, SERVICE_KEY) });
  } finally {
    try {
      await db.end({ timeout: 5 });
    } finally {
      await close();
    }
  }
}

async function newUser(db: postgres.Sql, id: string = crypto.randomUUID()): Promise<string> {
  await db.unsafe("insert into auth.users (id, email) values ($1, $2)", [id, `${id}@example.test`]);
  return id;
}

/** Asserts `promise` rejects with an Error whose message matches every pattern. */
async function rejectsMatching(promise: Promise<unknown>, ...patterns: RegExp[]) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// The stand-in itself: what it refuses, and PostgREST's error behaviour on the wire

Deno.test("stand-in: only the service key is accepted; a user JWT is not honoured", async () => {
  await withSupabase(async ({ standin }) => {
    const rest = `${standin.url}/rest/v1/image_jobs?select=*`;
    const call = (headers: Record<string, string>) => fetch(rest, { headers });
    const refused = async (response: Response) => {
      assert.equal(response.status, 401);
      assert.deepEqual(await response.json(), { message: "Invalid API key" });
    };
    await refused(await call({}));
    await refused(await call({ apikey: "sb_publishable_nope" }));
    await refused(
      await call({
        apikey: SERVICE_KEY,
        authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
      }),
    );
    await refused(
      await fetch(`${standin.url}/storage/v1/object/images/x.png`, {
        headers: { apikey: "wrong" },
      }),
    );
    const ok = await call({ apikey: SERVICE_KEY, authorization: `Bearer ${SERVICE_KEY}` });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), []);
  });
});

Deno.test("stand-in: PostgREST errors, grants and singular responses follow PostgREST", async () => {
  await withSupabase(async ({ db, standin, client }) => {
    const headers = {
      apikey: SERVICE_KEY,
      authorization: `Bearer ${SERVICE_KEY}`,
      "content-type": "application/json",
    };
    const post = (path: string, body: unknown, extra: Record<string, string> = {}) =>
      fetch(`${standin.url}/rest/v1/${path}`, {
        method: "POST",
        headers: { ...headers, ...extra },
        body: JSON.stringify(body),
      });

    const missingTable = await fetch(`${standin.url}/rest/v1/nope?select=*`, { headers });
    assert.equal(missingTable.status, 404);
    assert.equal((await missingTable.json()).code, "PGRST205");

    const missingFn = await post("rpc/image_jobs_claim", { p_id: crypto.randomUUID() });
    assert.equal(missingFn.status, 404, "required arguments missing: no such function");
    assert.equal((await missingFn.json()).code, "PGRST202");

    const unknownColumn = await post("image_jobs", { nope: 1 });
    assert.equal(unknownColumn.status, 400);
    assert.equal((await unknownColumn.json()).code, "PGRST204");

    const badFilter = await fetch(`${standin.url}/rest/v1/image_jobs?select=*&id=gt.1`, {
      headers,
    });
    assert.equal(badFilter.status, 400);
    assert.equal((await badFilter.json()).code, "PGRST100");

    // Requests run as service_role: what it was not granted is refused (42501 → 403).
    await db.unsafe(`
      create table public.standin_private (id int);
      create function public.standin_private_fn() returns int language sql as 'select 1';
      revoke execute on function public.standin_private_fn() from public;`);
    const table = await post("standin_private", { id: 1 });
    assert.equal(table.status, 403);
    assert.equal((await table.json()).code, "42501");
    const fn = await post("rpc/standin_private_fn", {});
    assert.equal(fn.status, 403);
    assert.equal((await fn.json()).code, "42501");
    await db.unsafe("grant execute on function public.standin_private_fn() to service_role");
    const granted = await post("rpc/standin_private_fn", {});
    assert.equal(granted.status, 200);
    assert.equal(await granted.json(), 1, "a scalar function answers its bare value");

    // Singular responses: two rows inserted with Accept: object → 406, and nothing is inserted.
    const user = await newUser(db);
    const row = () => ({
      id: crypto.randomUUID(),
      user_id: user,
      model: "flux-kontext-pro",
      params: { prompt: "x" },
    });
    const two = await post("image_jobs?select=*", [row(), row()], {
      accept: "application/vnd.pgrst.object+json",
      prefer: "return=representation",
    });
    assert.equal(two.status, 406);
    assert.equal((await two.json()).code, "PGRST116");
    assert.equal(
      Number((await db`select count(*) as n from public.image_jobs`)[0].n),
      0,
      "rolled back",
    );

    // Unique violations are 409 and carry PostgreSQL's code, message and details.
    const first = row();
    const inserted = await post("image_jobs", first);
    assert.equal(inserted.status, 201);
    assert.equal(await inserted.text(), "", "no Prefer: return=minimal, no body");
    const again = await post("image_jobs", first);
    assert.equal(again.status, 409);
    const error = await again.json();
    assert.equal(error.code, "23505");
    assert.match(error.message, /duplicate key/);
    assert.match(error.details, /already exists/);
    assert.ok("hint" in error);

    // supabase-js sees PostgREST errors as { code, message }.
    const { error: rpcError } = await client.rpc("image_jobs_transition", {
      p_id: "not-a-uuid",
      p_owner: "w",
      p_from: ["queued"],
      p_patch: {},
    });
    assert.equal(rpcError?.code, "22P02");
  });
});

// ---------------------------------------------------------------------------------------------
// SupabaseImageStorage

Deno.test("SupabaseImageStorage: put keeps the content type, upsert overwrites in place, get of a missing path is null", async () => {
  await withSupabase(async ({ db, standin, client }) => {
    const storage = new SupabaseImageStorage(client);
    const user = crypto.randomUUID();
    const path = `results/${user}/${crypto.randomUUID()}.png`;
    const first = makePng(40, 30, 1);
    await storage.put(path, first, "image/png");

    const raw = await fetch(`${standin.url}/storage/v1/object/images/${path}`, {
      headers: { apikey: SERVICE_KEY, authorization: `Bearer ${SERVICE_KEY}` },
    });
    assert.equal(raw.status, 200);
    assert.equal(
      raw.headers.get("content-type"),
      "image/png",
      "stored as image/png, not text/plain",
    );
    assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), first);
    const got = await storage.get(path);
    assert.deepEqual(got, { bytes: first, contentType: "image/png" });

    // The same path again (a retried store): no error, the latest bytes win, still one object.
    const second = makePng(20, 20, 2);
    await storage.put(path, second, "image/png");
    assert.deepEqual((await storage.get(path))?.bytes, second);
    const rows = await db<{ name: string; mimetype: string; size: number }[]>`
      select name, metadata->>'mimetype' as mimetype, (metadata->>'size')::int as size
        from storage.objects where bucket_id = 'images'`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [{
      name: path,
      mimetype: "image/png",
      size: second.byteLength,
    }]);

    assert.equal(await storage.get(`results/${user}/missing.png`), null);
    assert.equal(await storage.get(`nowhere/${crypto.randomUUID()}.jpeg`), null);

    // Without upsert (not what the adapter does) Storage refuses a second write: the stand-in too.
    const { error } = await client.storage.from("images").upload(path, second, {
      contentType: "image/png",
    });
    assert.equal((error as { statusCode?: string } | null)?.statusCode, "409");
  });
});

Deno.test("SupabaseImageStorage: remove deletes rows and bytes; the bucket's limits are enforced", async () => {
  await withSupabase(async ({ db, standin, client }) => {
    const storage = new SupabaseImageStorage(client);
    const a = `inputs/${crypto.randomUUID()}/a/input_image.png`;
    const b = `inputs/${crypto.randomUUID()}/b/input_image.jpeg`;
    await storage.put(a, makePng(8, 8), "image/png");
    await storage.put(b, makeJpeg(8, 8), "image/jpeg");
    assert.equal((await storage.get(b))?.contentType, "image/jpeg");
    await storage.remove([a, `inputs/${crypto.randomUUID()}/never-existed.png`]);
    assert.equal(await storage.get(a), null);
    assert.ok(await storage.get(b), "other objects stay");
    await storage.remove([]);
    assert.deepEqual((await db`select name from storage.objects`).map((r) => r.name), [b]);
    await assert.rejects(Deno.stat(`${standin.storageDir}/images/${a}`), Deno.errors.NotFound);
    assert.ok((await Deno.stat(`${standin.storageDir}/images/${b}`)).isFile);

    await rejectsMatching(
      storage.put("inputs/x/doc.txt", new TextEncoder().encode("hi"), "text/plain"),
      /mime type text\/plain is not supported/,
    );
    await db`update storage.buckets set file_size_limit = 100 where id = 'images'`;
    await rejectsMatching(
      storage.put("inputs/x/big.png", makePng(64, 64, 9), "image/png"),
      /exceeded the maximum allowed size/,
    );
    assert.equal(await storage.get("inputs/x/big.png"), null);

    const other = new SupabaseImageStorage(client, "no-such-bucket");
    await rejectsMatching(other.put("x.png", makePng(4, 4), "image/png"), /Bucket not found/);
  });
});

Deno.test({
  name:
    "SupabaseImageStorage: get() on a missing bucket throws instead of answering 'no such object'",
  fn: async () => {
    await withSupabase(async ({ client }) => {
      const storage = new SupabaseImageStorage(client, "no-such-bucket");
      await rejectsMatching(storage.get("inputs/x/input_image.png"), /Bucket not found/);
    });
  },
});

Deno.test("SupabaseImageStorage: signedUrl downloads without any key; a tampered token fails", async () => {
  await withSupabase(async ({ client }) => {
    const storage = new SupabaseImageStorage(client);
    const path = `results/${crypto.randomUUID()}/${crypto.randomUUID()}.png`;
    const png = makePng(16, 16, 5);
    await storage.put(path, png, "image/png");
    const url = await storage.signedUrl(path, 3600);
    assert.match(url, /\/storage\/v1\/object\/sign\/images\/results\/.+\.png\?token=/);

    const download = await fetch(url); // no apikey, no Authorization
    assert.equal(download.status, 200);
    assert.equal(download.headers.get("content-type"), "image/png");
    assert.deepEqual(new Uint8Array(await download.arrayBuffer()), png);

    const token = new URL(url).searchParams.get("token")!;
    const [header, payload, signature] = token.split(".");
    const flipped = signature.slice(0, -2) + (signature.at(-2) === "A" ? "B" : "A") +
      signature.at(-1);
    const tampered = new URL(url);
    tampered.searchParams.set("token", `${header}.${payload}.${flipped}`);
    const refused = await fetch(tampered);
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error, "InvalidJWT");

    // A valid token for one object does not open another.
    const otherPath = `results/${crypto.randomUUID()}/other.png`;
    await storage.put(otherPath, makePng(4, 4), "image/png");
    const moved = new URL(url.replace(path, otherPath));
    const mismatch = await fetch(moved);
    assert.equal(mismatch.status, 400);
    await mismatch.body?.cancel();

    await rejectsMatching(
      storage.signedUrl(`results/${crypto.randomUUID()}.png`, 60),
      /Object not found/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: the service built from SUPABASE_URL, through supabase-js, to PostgreSQL and files

async function withService(
  body: (ctx: {
    env: SupabaseEnv;
    app: ReturnType<typeof imagesAppFor>;
    sim: Awaited<ReturnType<typeof startBflSimulator>>;
    localUser: string;
    jwtSecret: string;
  }) => Promise<void>,
) {
  await withSupabase(async (env) => {
    const sim = await startBflSimulator({ readyAfterMs: 200 });
    try {
      const localUser = await newUser(env.db);
      const jwtSecret = `jwt-secret-${crypto.randomUUID()}`;
      const services = await buildServices(
        configFromEnv({
          SUPABASE_URL: env.standin.url,
          SUPABASE_SECRET_KEY: SERVICE_KEY,
          SUPABASE_JWT_SECRET: jwtSecret,
          BFL_API_KEY: sim.key,
          BFL_API_URL: sim.apiUrl,
          BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
          ALLOW_ANONYMOUS: "true",
          LOCAL_USER_ID: localUser,
          WEBHOOKS: "false",
          POLL_INTERVAL_MS: "100",
        }),
        { log: createMemoryLogger() },
      );
      try {
        assert.equal(services.config.store, "supabase");
        await body({ env, app: imagesAppFor(services), sim, localUser, jwtSecret });
      } finally {
        await services.close();
      }
    } finally {
      await sim.close();
    }
  });
}

async function followJob(
  app: ReturnType<typeof imagesAppFor>,
  id: string,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const response = await app.request(`/images/jobs/${id}`, { headers });
    assert.equal(response.status, 200, await response.clone().text());
    const job = await response.json();
    if (["succeeded", "failed", "moderated"].includes(job.status) || Date.now() > deadline) {
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every call that reached the stand-in carried the service key, and nothing else, as credentials. */
function assertOnlyServiceCredentials(standin: SupabaseStandin, forbidden: string[] = []) {
  assert.ok(standin.requests.length > 0);
  for (const request of standin.requests) {
    const where = `${request.method} ${request.path}`;
    if (request.path.startsWith("/storage/v1/object/sign/") && request.method === "GET") {
      assert.equal(
        request.headers.authorization,
        undefined,
        `${where}: a signed download needs no credentials`,
      );
      continue;
    }
    assert.equal(request.headers.authorization, `Bearer ${SERVICE_KEY}`, where);
    assert.equal(request.headers.apikey, SERVICE_KEY, where);
    assert.notEqual(request.status, 401, where);
    for (const secret of forbidden) {
      assert.ok(
        !JSON.stringify(request.headers).includes(secret),
        `${where} carries the caller's credential`,
      );
    }
  }
}

Deno.test("end to end on Supabase: upload → BFL → stored result, served by a Storage signed URL", async () => {
  await withService(async ({ env, app, sim, localUser }) => {
    const upload = makePng(96, 64, 3);
    const form = new FormData();
    form.set("prompt", "Make the sky purple");
    form.set("output_format", "png");
    form.set("input_image", new File([upload], "sky.png", { type: "image/png" }));
    const created = await app.request("/images/jobs", { method: "POST", body: form });
    assert.equal(created.status, 202, await created.clone().text());
    const { id } = await created.json();

    const job = await followJob(app, id);
    assert.equal(job.status, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.inputs, [{
      slot: "input_image",
      kind: "upload",
      content_type: "image/png",
      bytes: upload.byteLength,
    }]);
    // BFL got exactly the uploaded bytes, read back from Storage through the adapter.
    assert.equal(sim.submissions.length, 1);
    assert.deepEqual(decodeBase64(sim.submissions[0].body.input_image as string), upload);

    const image = job.image as { url: string; content_type: string; bytes: number };
    assert.equal(image.content_type, "image/png");
    assert.ok(
      image.url.startsWith(`${env.standin.url}/storage/v1/object/sign/images/results/`),
      image.url,
    );
    const download = await fetch(image.url);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get("content-type"), "image/png");
    const bytes = new Uint8Array(await download.arrayBuffer());
    assert.equal(sniffImage(bytes)?.format, "png");
    assert.equal(bytes.byteLength, image.bytes);

    // The row in PostgreSQL, and both objects in storage.objects with their bytes on disk.
    const [row] = await env.db<
      {
        status: string;
        user_id: string;
        result_path: string;
        params_type: string;
        lease_owner: string | null;
      }[]
    >`
      select status, user_id::text, result_path, jsonb_typeof(params) as params_type, lease_owner
        from public.image_jobs where id = ${id}`;
    assert.deepEqual({ ...row }, {
      status: "succeeded",
      user_id: localUser,
      result_path: `results/${localUser}/${id}.png`,
      params_type: "object",
      lease_owner: null,
    });
    const objects = await env.db<{ name: string; mimetype: string; size: number }[]>`
      select name, metadata->>'mimetype' as mimetype, (metadata->>'size')::int as size
        from storage.objects where bucket_id = 'images' order by name`;
    assert.deepEqual(objects.map((o) => ({ ...o })), [
      {
        name: `inputs/${localUser}/${id}/input_image.png`,
        mimetype: "image/png",
        size: upload.byteLength,
      },
      { name: `results/${localUser}/${id}.png`, mimetype: "image/png", size: image.bytes },
    ]);
    for (const object of objects) {
      assert.equal(
        (await Deno.stat(`${env.standin.storageDir}/images/${object.name}`)).size,
        object.size,
      );
    }

    const listed = await (await app.request("/images/jobs")).json();
    assert.deepEqual(listed.data.map((j: { id: string }) => j.id), [id]);

    const paths = new Set(env.standin.requests.map((r) => `${r.method} ${r.path}`));
    for (
      const expected of [
        "POST /rest/v1/rpc/image_jobs_create",
        "GET /rest/v1/image_jobs",
        "POST /rest/v1/rpc/image_jobs_claim",
        "POST /rest/v1/rpc/image_jobs_transition",
        "POST /rest/v1/rpc/image_jobs_list",
        `POST /storage/v1/object/images/inputs/${localUser}/${id}/input_image.png`,
        `POST /storage/v1/object/images/results/${localUser}/${id}.png`,
        `POST /storage/v1/object/sign/images/results/${localUser}/${id}.png`,
      ]
    ) {
      assert.ok(paths.has(expected), `the adapters went through ${expected}`);
    }
    // The inline submit sends the request's own (spooled) upload: the input is not read back from Storage.
    assert.ok(!paths.has(`GET /storage/v1/object/images/inputs/${localUser}/${id}/input_image.png`));
    assertOnlyServiceCredentials(env.standin);
  });
});

Deno.test("end to end on Supabase: a user's Authorization header never reaches Supabase", async () => {
  await withService(async ({ env, app, localUser, jwtSecret }) => {
    const user = await newUser(env.db);
    const token = await new SignJWT({ role: "authenticated" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user)
      .setIssuer(`${env.standin.url}/auth/v1`)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(jwtSecret));
    const auth = { authorization: `Bearer ${token}` };

    const created = await app.request("/images/jobs", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "A lighthouse at dusk", output_format: "jpeg" }),
    });
    assert.equal(created.status, 202, await created.clone().text());
    const { id } = await created.json();
    const job = await followJob(app, id, auth);
    assert.equal(job.status, "succeeded", JSON.stringify(job));

    const [row] = await env.db`select user_id::text from public.image_jobs where id = ${id}`;
    assert.equal(row.user_id, user, "the job belongs to the token's user");
    assert.equal(
      (await app.request(`/images/jobs/${id}`)).status,
      404,
      "the anonymous local user cannot see it",
    );
    assert.notEqual(user, localUser);
    const download = await fetch((job.image as { url: string }).url);
    assert.equal(sniffImage(new Uint8Array(await download.arrayBuffer()))?.format, "jpeg");

    assertOnlyServiceCredentials(env.standin, [token, token.split(".")[2]]);
  });
});

Deno.test("stop the shared PostgreSQL cluster", async () => {
  await stopSharedPostgresCluster();
});
