/**
 * Supabase stand-in for tests: a real HTTP server on 127.0.0.1 that speaks the PostgREST
 * (`/rest/v1`) and Storage (`/storage/v1`) wire formats for exactly the calls the service's
 * supabase-js adapters make (shared/supabase/), backed by a REAL PostgreSQL database that has the
 * migrations applied (public.image_jobs, its SQL functions, storage.buckets/storage.objects from
 * the shim). Supabase itself (Docker) cannot run here; this lets supabase-js 2.119 run unmodified.
 *
 * What it does, following PostgREST 12 and Storage API behaviour:
 * - Auth: every call (except a signed-URL download) must carry `apikey: <service key>`; an
 *   `Authorization` header, when present, must be `Bearer <service key>`. Anything else is
 *   401 `{"message":"Invalid API key"}`. ONLY service-key auth exists: a user's JWT is never
 *   honoured (real Supabase would run the call as that user under RLS; here it is refused).
 * - PostgREST: `POST /rest/v1/<table>` (insert; object or array body; `Prefer: return=
 *   representation|minimal`), `GET /rest/v1/<table>?select=*&col=eq.v...`, `DELETE /rest/v1/
 *   <table>?col=eq.v...`, `POST /rest/v1/rpc/<fn>` (JSON named arguments, called as
 *   `fn(name => $n::type)`; overloads picked by argument names, defaults honoured). Each request
 *   runs in one transaction as PostgREST does: `set local role service_role` and
 *   `request.jwt.claims = {"role":"service_role"}`, so grants (and RLS, which service_role
 *   bypasses) are the database's. Results are built with `json_agg` like PostgREST, so JSON
 *   types (numeric, bigint, timestamptz, jsonb) are what PostgREST would send.
 *   `Accept: application/vnd.pgrst.object+json` gives one object, else 406 PGRST116 (a mutation
 *   is rolled back then). PostgreSQL errors become `{code, message, details, hint}` with
 *   PostgREST's status table (23505/23503 → 409, 42501 → 403, 42883/42P01 → 404, P0001 → 400,
 *   most others 400). Unknown table → 404 PGRST205, unknown function → 404 PGRST202, unknown
 *   column in a body → 400 PGRST204. Profiles other than `public` → 406 PGRST106.
 * - Storage: `POST /storage/v1/object/<bucket>/<path>` (raw body; `x-upsert`, `content-type`,
 *   `cache-control`), `GET /storage/v1/object[/authenticated]/<bucket>/<path>`,
 *   `DELETE /storage/v1/object/<bucket>` with `{"prefixes": [...]}` (exact names, as Storage),
 *   `POST /storage/v1/object/sign/<bucket>/<path>` with `{"expiresIn": n}` and the signed
 *   `GET /storage/v1/object/sign/<bucket>/<path>?token=` (HS256 JWT `{url, iat, exp}` like
 *   Storage; no apikey needed). Objects are rows in storage.objects (metadata: mimetype, size,
 *   cacheControl, eTag, ...) and bytes in files under `storageDir`. The bucket must exist in
 *   storage.buckets; its file_size_limit and allowed_mime_types are enforced. Errors use
 *   Storage's shape and its HTTP 400 convention: `{"statusCode":"404","code":"NoSuchKey",
 *   "error":"not_found","message":"Object not found"}` (413 too large, 415 mime type, 409
 *   duplicate without x-upsert, 404 bucket not found, InvalidJWT/InvalidSignature for tokens).
 *
 * What it does NOT do: user JWTs, RLS evaluation as a user, anon keys; any PostgREST filter other
 * than `eq.`, `select` other than `*`, order/limit/offset/range, embedding, upsert
 * (`on_conflict`), PATCH, CSV, GET/HEAD RPCs, `Prefer: count`; Storage multipart/form uploads,
 * PUT (update), move/copy, list, info/exists, public URLs, buckets API, TUS/resumable or S3
 * uploads, image transformations, `download=` disposition, versions. Storage metadata is
 * written with the stand-in's own database connection (like Storage's admin role), not as
 * service_role: the shim grants service_role nothing on storage.objects. Unsupported routes
 * answer 404 with a message naming the stand-in, so a new call in the adapters fails loudly.
 *
 * @module
 */
import postgres from "postgres";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";

export interface SupabaseStandinOptions {
  /** postgres:// URL of a migrated database (the stand-in connects as this URL's user). */
  databaseUrl: string;
  /** The only credential accepted (as `apikey` and as `Authorization: Bearer`). */
  serviceKey: string;
  /** Where object bytes are kept; default a new temporary folder, removed on close. */
  storageDir?: string;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query, e.g. /rest/v1/rpc/image_jobs_claim. */
  path: string;
  /** The query string, with its leading "?" (or ""). */
  search: string;
  /** Request headers, names lower-cased. */
  headers: Record<string, string>;
  /** The status the stand-in answered (0 while in flight). */
  status: number;
}

export interface SupabaseStandin {
  /** Use as SUPABASE_URL, e.g. http://127.0.0.1:PORT */
  url: string;
  serviceKey: string;
  storageDir: string;
  /** Every request received, in arrival order. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;

const SCHEMA = "public";
const JSON_TYPE = "application/json; charset=utf-8";
const OBJECT_TYPE = "application/vnd.pgrst.object+json; charset=utf-8";

/** A response decided somewhere deep in a handler (errors mostly). */
class Answer extends Error {
  constructor(readonly response: Response) {
    super(`HTTP ${response.status}`);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": JSON_TYPE, ...headers },
  });
}

function pgrstError(
  status: number,
  code: string,
  message: string,
  details: string | null = null,
  hint: string | null = null,
): Answer {
  return new Answer(json(status, { code, details, hint, message }));
}

/** Storage answers 400 for client errors whatever the real status (kept in `statusCode`). */
function storageError(statusCode: number, code: string, error: string, message: string): Answer {
  return new Answer(
    json(statusCode >= 500 ? 500 : 400, { statusCode: String(statusCode), code, error, message }),
  );
}

const noSuchKey = () => storageError(404, "NoSuchKey", "not_found", "Object not found");
const noSuchBucket = () =>
  storageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found");
const invalidKey = (key: string) =>
  storageError(400, "InvalidKey", "InvalidKey", `Invalid key: ${key}`);
const notImplemented = (method: string, path: string) =>
  new Answer(json(404, {
    statusCode: "404",
    code: "NotSupported",
    error: "Not Found",
    message:
      `Route ${method}:${path} is not implemented by the Supabase test stand-in (tests/support/supabase-standin.ts)`,
  }));

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

interface PgError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function isPgError(error: unknown): error is PgError {
  return typeof error === "object" && error !== null &&
    (error as { name?: string }).name === "PostgresError" &&
    typeof (error as { code?: unknown }).code === "string";
}

/** PostgREST's SQLSTATE → HTTP status table (PostgREST 12, authenticated caller). */
function pgrstStatus(code: string): number {
  if (code === "23503" || code === "23505") return 409;
  if (code === "25006") return 405;
  if (code === "42501") return 403;
  if (code === "42883" || code === "42P01") return 404;
  if (code === "P0001") return 400;
  const cls = code.slice(0, 2);
  if (cls === "08" || cls === "53") return 503;
  if (cls === "0L" || cls === "0P" || cls === "28") return 403;
  if (cls === "54") return 413;
  if (
    ["09", "25", "2D", "38", "39", "3B", "40", "55", "57", "58", "F0", "HV", "P0", "XX"].includes(
      cls,
    )
  ) return 500;
  return 400;
}

function fromPgError(error: PgError): Answer {
  return pgrstError(
    pgrstStatus(error.code),
    error.code,
    error.message,
    error.detail ?? null,
    error.hint ?? null,
  );
}

// ---------------------------------------------------------------------------------------------
// PostgREST

interface Relation {
  columns: string[];
}

async function relation(sql: Sql, name: string): Promise<Relation> {
  const rows = await sql.unsafe<{ columns: string[] }[]>(
    `select array(select a.attname::text from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'v', 'm', 'f', 'p')`,
    [SCHEMA, name],
  );
  if (rows.length === 0) {
    throw pgrstError(
      404,
      "PGRST205",
      `Could not find the table '${SCHEMA}.${name}' in the schema cache`,
    );
  }
  return { columns: rows[0].columns };
}

/** Runs `body` like PostgREST runs a request: one transaction, as service_role, with its claims. */
async function asServiceRole<T>(
  sql: Sql,
  readOnly: boolean,
  body: (tx: Tx) => Promise<T>,
): Promise<T> {
  const run = async (tx: Tx) => {
    await tx.unsafe("set local role service_role");
    await tx.unsafe(
      "select set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.role', 'service_role', true)",
      [
        JSON.stringify({ role: "service_role" }),
      ],
    );
    return await body(tx);
  };
  return (readOnly ? await sql.begin("read only", run) : await sql.begin(run)) as T;
}

interface Rendered {
  body: string;
  first: string | null;
  count: number;
}

/** Wraps a row source in PostgREST's json_agg rendering (`value`: what each row renders as). */
const renderRows = (source: string, value = "_t") =>
  `with pgrst_source as (${source})
   select coalesce(json_agg(${value}), '[]')::text as body, (json_agg(${value}) -> 0)::text as first,
          count(*)::int as count
     from pgrst_source _t`;

type Accept = "array" | "object";

function accepted(request: Request): Accept {
  const accept = (request.headers.get("accept") ?? "").toLowerCase();
  if (accept.includes("application/vnd.pgrst.object+json")) return "object";
  if (accept === "" || accept.includes("application/json") || accept.includes("*/*")) {
    return "array";
  }
  throw pgrstError(406, "PGRST107", `None of these media types are available: ${accept}`);
}

function checkProfile(request: Request, header: "accept-profile" | "content-profile") {
  const profile = request.headers.get(header);
  if (profile !== null && profile !== SCHEMA) {
    throw pgrstError(
      406,
      "PGRST106",
      `The schema must be one of the following: ${SCHEMA}`,
      null,
      null,
    );
  }
}

function singular(count: number): Answer {
  return pgrstError(
    406,
    "PGRST116",
    "Cannot coerce the result to a single JSON object",
    `The result contains ${count} rows`,
  );
}

/** Aborts a transaction without it being an error of the database (a 406, say). */
class Rollback extends Error {
  constructor(readonly answer: Answer) {
    super("rollback");
  }
}

async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw pgrstError(400, "PGRST102", "Empty or invalid json", (error as Error).message);
  }
}

/** `col=eq.value` query parameters → SQL conditions with parameters starting at $first. */
function eqFilters(
  url: URL,
  allowed: Set<string>,
  first: number,
): { where: string; params: string[] } {
  const conditions: string[] = [];
  const params: string[] = [];
  for (const [key, value] of url.searchParams) {
    if (allowed.has(key)) continue;
    if (!value.startsWith("eq.")) {
      throw pgrstError(
        400,
        "PGRST100",
        `"failed to parse filter (${value})" (the Supabase test stand-in supports only eq. filters)`,
      );
    }
    params.push(value.slice(3));
    conditions.push(`${quoteIdent(key)} = $${first + params.length - 1}`);
  }
  return { where: conditions.length ? ` where ${conditions.join(" and ")}` : "", params };
}

function checkSelect(url: URL) {
  const select = url.searchParams.get("select");
  if (select !== null && select !== "*") {
    throw pgrstError(
      400,
      "PGRST100",
      `select=${select} is not supported by the Supabase test stand-in (only select=*)`,
    );
  }
  for (const key of ["order", "limit", "offset", "on_conflict", "columns"]) {
    if (url.searchParams.has(key)) {
      throw pgrstError(
        400,
        "PGRST100",
        `The query parameter '${key}' is not supported by the Supabase test stand-in`,
      );
    }
  }
}

function returnPreference(request: Request): "representation" | "minimal" {
  return /return=representation/.test(request.headers.get("prefer") ?? "")
    ? "representation"
    : "minimal";
}

function rowsResponse(
  status: number,
  rendered: Rendered,
  accept: Accept,
  headers: Record<string, string> = {},
): Response {
  if (accept === "object") {
    return new Response(rendered.first, {
      status,
      headers: { "content-type": OBJECT_TYPE, ...headers },
    });
  }
  return new Response(rendered.body, {
    status,
    headers: { "content-type": JSON_TYPE, ...headers },
  });
}

async function runRendered(
  tx: Tx,
  query: string,
  params: unknown[],
  accept: Accept,
): Promise<Rendered> {
  const [row] = await tx.unsafe<Rendered[]>(query, params as postgres.ParameterOrJSON<never>[]);
  if (accept === "object" && row.count !== 1) throw new Rollback(singular(row.count));
  return row;
}

async function restTable(sql: Sql, request: Request, url: URL, table: string): Promise<Response> {
  checkSelect(url);
  const target = `${quoteIdent(SCHEMA)}.${quoteIdent(table)}`;
  const method = request.method;
  if (method === "GET") {
    checkProfile(request, "accept-profile");
    const accept = accepted(request);
    await relation(sql, table);
    const { where, params } = eqFilters(url, new Set(["select"]), 1);
    const rendered = await asServiceRole(
      sql,
      true,
      (tx) => runRendered(tx, renderRows(`select * from ${target}${where}`), params, accept),
    );
    const range = rendered.count === 0 ? "*/*" : `0-${rendered.count - 1}/*`;
    return rowsResponse(200, rendered, accept, { "content-range": range });
  }
  if (method === "POST") {
    checkProfile(request, "content-profile");
    const accept = accepted(request);
    const { columns } = await relation(sql, table);
    const body = await readJson(request);
    const rows = Array.isArray(body) ? body : [body];
    if (
      rows.length === 0 ||
      rows.some((row) => typeof row !== "object" || row === null || Array.isArray(row))
    ) {
      throw pgrstError(
        400,
        "PGRST102",
        "Empty or invalid json",
        "Expected a JSON object or an array of objects",
      );
    }
    const keys = Object.keys(rows[0] as Record<string, unknown>);
    const unknown = keys.find((key) => !columns.includes(key));
    if (unknown !== undefined) {
      throw pgrstError(
        400,
        "PGRST204",
        `Could not find the '${unknown}' column of '${table}' in the schema cache`,
      );
    }
    const list = keys.map(quoteIdent).join(", ");
    const insert = `insert into ${target} (${list})
      select ${list} from json_populate_recordset(null::${target}, $1::text::json) returning *`;
    const rendered = await asServiceRole(
      sql,
      false,
      (tx) => runRendered(tx, renderRows(insert), [JSON.stringify(rows)], accept),
    );
    if (returnPreference(request) === "minimal") {
      return new Response(null, { status: 201, headers: { "content-range": "*/*" } });
    }
    return rowsResponse(201, rendered, accept, {
      "content-range": "*/*",
      "preference-applied": "return=representation",
    });
  }
  if (method === "DELETE") {
    checkProfile(request, "content-profile");
    const accept = accepted(request);
    await relation(sql, table);
    const { where, params } = eqFilters(url, new Set(["select"]), 1);
    const rendered = await asServiceRole(
      sql,
      false,
      (tx) =>
        runRendered(tx, renderRows(`delete from ${target}${where} returning *`), params, accept),
    );
    if (returnPreference(request) === "minimal") {
      return new Response(null, { status: 204, headers: { "content-range": "*/*" } });
    }
    return rowsResponse(200, rendered, accept, {
      "content-range": "*/*",
      "preference-applied": "return=representation",
    });
  }
  throw notImplemented(method, url.pathname);
}

interface FunctionInfo {
  input_names: string[];
  input_types: string[];
  required: number;
  retset: boolean;
  /** 'composite' (a row type or OUT/TABLE columns), 'void', or 'scalar'. */
  returns: "composite" | "void" | "scalar";
}

async function functionOverloads(sql: Sql, name: string): Promise<FunctionInfo[]> {
  const rows = await sql.unsafe<
    {
      names: string[] | null;
      modes: string[] | null;
      types: string[];
      nargs: number;
      ndefaults: number;
      retset: boolean;
      typtype: string;
      typname: string;
    }[]
  >(
    `select p.proargnames::text[] as names, p.proargmodes::text[] as modes,
            array(select format_type(t, null) from unnest(p.proargtypes) as t) as types,
            p.pronargs::int as nargs, p.pronargdefaults::int as ndefaults, p.proretset as retset,
            t.typtype::text as typtype, t.typname::text as typname
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
       join pg_type t on t.oid = p.prorettype
      where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'`,
    [SCHEMA, name],
  );
  return rows.map((row) => {
    const names = row.names ?? [];
    const modes = row.modes ?? names.map(() => "i");
    const inputNames = names.filter((_, i) => ["i", "b", "v"].includes(modes[i]));
    const hasOutColumns = modes.some((mode) => mode === "o" || mode === "b" || mode === "t");
    const returns = row.typname === "void"
      ? "void"
      : row.typtype === "c" || row.typname === "record" || hasOutColumns
      ? "composite"
      : "scalar";
    return {
      input_names: inputNames.length === row.nargs ? inputNames : [],
      input_types: row.types,
      required: row.nargs - row.ndefaults,
      retset: row.retset,
      returns,
    };
  });
}

/** One named argument as SQL: scalars travel as text, json/jsonb as JSON text, arrays as a JSON array. */
function argument(type: string, index: number): string {
  const p = `$${index}::text`;
  if (type === "json" || type === "jsonb") return `${p}::${type}`;
  if (type.endsWith("[]")) {
    return `(case when ${p} is null then null else array(select json_array_elements_text(${p}::json)) end)::${type}`;
  }
  return `${p}::${type}`;
}

function argumentValue(type: string, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (type === "json" || type === "jsonb" || type.endsWith("[]")) return JSON.stringify(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function restRpc(sql: Sql, request: Request, url: URL, name: string): Promise<Response> {
  if (request.method !== "POST") throw notImplemented(request.method, url.pathname);
  checkProfile(request, "content-profile");
  const accept = accepted(request);
  const body = (await readJson(request)) ?? {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw pgrstError(
      400,
      "PGRST102",
      "Empty or invalid json",
      "RPC arguments must be a JSON object",
    );
  }
  const args = body as Record<string, unknown>;
  const keys = Object.keys(args);
  const overloads = await functionOverloads(sql, name);
  const chosen = overloads.find((fn) =>
    keys.every((key) => fn.input_names.includes(key)) &&
    fn.input_names.slice(0, fn.required).every((required) => keys.includes(required))
  );
  if (!chosen) {
    const listed = [...keys].sort().join(", ");
    throw pgrstError(
      404,
      "PGRST202",
      `Could not find the function ${SCHEMA}.${name}(${listed}) in the schema cache`,
      `Searched for the function ${SCHEMA}.${name} with parameters ${
        listed || "(none)"
      } or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
    );
  }
  const params: (string | null)[] = [];
  const named = keys.map((key) => {
    const type = chosen.input_types[chosen.input_names.indexOf(key)];
    params.push(argumentValue(type, args[key]));
    return `${quoteIdent(key)} => ${argument(type, params.length)}`;
  });
  const call = `${quoteIdent(SCHEMA)}.${quoteIdent(name)}(${named.join(", ")})`;
  if (chosen.returns === "void") {
    await asServiceRole(sql, false, (tx) => tx.unsafe(`select ${call}`, params));
    return new Response(null, { status: 204 });
  }
  if (!chosen.retset) {
    // One value (a scalar or a single row): PostgREST answers it bare, not in an array.
    const value = chosen.returns === "composite"
      ? `(select to_json(_t) from ${call} as _t)`
      : `to_json(${call})`;
    const [row] = await asServiceRole(
      sql,
      false,
      (tx) => tx.unsafe<{ body: string | null }[]>(`select (${value})::text as body`, params),
    );
    const type = chosen.returns === "composite" && accept === "object" ? OBJECT_TYPE : JSON_TYPE;
    return new Response(row.body ?? "null", { status: 200, headers: { "content-type": type } });
  }
  const query = chosen.returns === "composite"
    ? renderRows(`select * from ${call}`)
    : renderRows(`select ${call} as v`, "_t.v");
  const rendered = await asServiceRole(sql, false, (tx) => runRendered(tx, query, params, accept));
  return rowsResponse(200, rendered, accept);
}

// ---------------------------------------------------------------------------------------------
// Storage

interface Bucket {
  id: string;
  file_size_limit: number | null;
  allowed_mime_types: string[] | null;
}

// Storage's own key and bucket name rules (src/storage/limits.ts: isValidKey / isValidBucketName).
const VALID_KEY = /^(\w|\/|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$/;
const VALID_BUCKET = /^(\w|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$/;

function splitObjectPath(rest: string): { bucket: string; name: string } {
  const segments = rest.split("/").map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw invalidKey(rest);
    }
  });
  const [bucket, ...nameParts] = segments;
  const name = nameParts.join("/");
  if (!bucket || !VALID_BUCKET.test(bucket)) {
    throw storageError(400, "InvalidBucketName", "Invalid Input", "Bucket name invalid");
  }
  if (
    !name || !VALID_KEY.test(name) ||
    nameParts.some((part) => part === "" || part === "." || part === "..")
  ) {
    throw invalidKey(name);
  }
  return { bucket, name };
}

async function findBucket(sql: Sql, id: string): Promise<Bucket> {
  const rows = await sql.unsafe<Bucket[]>(
    "select id, file_size_limit::float8 as file_size_limit, allowed_mime_types from storage.buckets where id = $1",
    [id],
  );
  if (rows.length === 0) throw noSuchBucket();
  return rows[0];
}

function mimeAllowed(mime: string, allowed: string[] | null): boolean {
  if (!allowed || allowed.length === 0) return true;
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    if (p.endsWith("/*")) return mime.startsWith(p.slice(0, -1));
    return p === mime;
  });
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

class ObjectStore {
  constructor(
    private readonly sql: Sql,
    private readonly dir: string,
    private readonly signingKey: Uint8Array,
  ) {}

  private file(bucket: string, name: string): string {
    return `${this.dir}/${bucket}/${name}`;
  }

  async upload(request: Request, bucketId: string, name: string): Promise<Response> {
    const bucket = await findBucket(this.sql, bucketId);
    const contentType = request.headers.get("content-type") ?? "application/octet-stream";
    if (contentType.toLowerCase().startsWith("multipart/form-data")) {
      throw notImplemented(
        `${request.method} (multipart/form-data)`,
        new URL(request.url).pathname,
      );
    }
    const mime = contentType.split(";")[0].trim().toLowerCase();
    const declared = Number(request.headers.get("content-length") ?? NaN);
    if (
      bucket.file_size_limit !== null && Number.isFinite(declared) &&
      declared > bucket.file_size_limit
    ) {
      throw storageError(
        413,
        "EntityTooLarge",
        "Payload too large",
        "The object exceeded the maximum allowed size",
      );
    }
    if (!mimeAllowed(mime, bucket.allowed_mime_types)) {
      throw storageError(
        415,
        "InvalidMimeType",
        "invalid_mime_type",
        `mime type ${contentType} is not supported`,
      );
    }
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bucket.file_size_limit !== null && bytes.byteLength > bucket.file_size_limit) {
      throw storageError(
        413,
        "EntityTooLarge",
        "Payload too large",
        "The object exceeded the maximum allowed size",
      );
    }
    const upsert = (request.headers.get("x-upsert") ?? "").toLowerCase() === "true";
    const now = new Date().toISOString();
    const metadata = {
      eTag: `"${(await sha256Hex(bytes)).slice(0, 32)}"`,
      size: bytes.byteLength,
      mimetype: contentType,
      cacheControl: request.headers.get("cache-control") ?? "no-cache",
      lastModified: now,
      contentLength: bytes.byteLength,
      httpStatusCode: 200,
    };
    const file = this.file(bucket.id, name);
    const id = await this.sql.begin(async (tx) => {
      const rows = await tx.unsafe<{ id: string }[]>(
        `insert into storage.objects (bucket_id, name, metadata) values ($1, $2, $3::text::jsonb)
         on conflict (bucket_id, name) do ${
          upsert ? "update set metadata = excluded.metadata, updated_at = now()" : "nothing"
        }
         returning id::text as id`,
        [bucket.id, name, JSON.stringify(metadata)],
      );
      if (rows.length === 0) {
        throw storageError(409, "Duplicate", "Duplicate", "The resource already exists");
      }
      // Bytes land before the row commits; a reader never sees a row without its file.
      await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
      const temp = `${file}.${crypto.randomUUID()}.part`;
      await Deno.writeFile(temp, bytes);
      await Deno.rename(temp, file);
      return rows[0].id;
    });
    return json(200, { Key: `${bucket.id}/${name}`, Id: id });
  }

  async download(bucketId: string, name: string, checkBucket = true): Promise<Response> {
    if (checkBucket) await findBucket(this.sql, bucketId);
    const rows = await this.sql.unsafe<
      {
        metadata:
          | { mimetype?: string; cacheControl?: string; eTag?: string; lastModified?: string }
          | null;
      }[]
    >(
      "select metadata from storage.objects where bucket_id = $1 and name = $2",
      [bucketId, name],
    );
    if (rows.length === 0) throw noSuchKey();
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.file(bucketId, name));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) throw noSuchKey();
      throw error;
    }
    const metadata = rows[0].metadata ?? {};
    const headers: Record<string, string> = {
      "content-type": metadata.mimetype ?? "application/octet-stream",
      "content-length": String(bytes.byteLength),
      "cache-control": metadata.cacheControl ?? "no-cache",
    };
    if (metadata.eTag) headers.etag = metadata.eTag;
    if (metadata.lastModified) {
      headers["last-modified"] = new Date(metadata.lastModified).toUTCString();
    }
    return new Response(bytes, { status: 200, headers });
  }

  async remove(request: Request, bucketId: string): Promise<Response> {
    await findBucket(this.sql, bucketId);
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      throw storageError(400, "InvalidRequest", "Bad Request", "body must be object");
    }
    const prefixes = (body as { prefixes?: unknown })?.prefixes;
    if (
      !Array.isArray(prefixes) || prefixes.length === 0 ||
      !prefixes.every((p) => typeof p === "string")
    ) {
      throw storageError(
        400,
        "InvalidRequest",
        "Bad Request",
        "body/prefixes must NOT have fewer than 1 items",
      );
    }
    const rows = await this.sql.unsafe<{ name: string; row: string }[]>(
      `delete from storage.objects o
        where o.bucket_id = $1 and o.name in (select json_array_elements_text($2::text::json))
       returning o.name, to_json(o)::text as row`,
      [bucketId, JSON.stringify(prefixes)],
    );
    for (const row of rows) {
      await Deno.remove(this.file(bucketId, row.name)).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
    return new Response(`[${rows.map((row) => row.row).join(",")}]`, {
      status: 200,
      headers: { "content-type": JSON_TYPE },
    });
  }

  async sign(request: Request, bucketId: string, name: string): Promise<Response> {
    await findBucket(this.sql, bucketId);
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      throw storageError(400, "InvalidRequest", "Bad Request", "body must be object");
    }
    const expiresIn = (body as { expiresIn?: unknown })?.expiresIn;
    if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn) || expiresIn < 1) {
      throw storageError(400, "InvalidRequest", "Bad Request", "body/expiresIn must be >= 1");
    }
    const rows = await this.sql.unsafe(
      "select 1 from storage.objects where bucket_id = $1 and name = $2",
      [bucketId, name],
    );
    if (rows.length === 0) throw noSuchKey();
    const url = `${bucketId}/${name}`;
    const token = await new SignJWT({ url })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + Math.floor(expiresIn))
      .sign(this.signingKey);
    return json(200, { signedURL: `/object/sign/${url}?token=${token}` });
  }

  async signedDownload(url: URL, bucketId: string, name: string): Promise<Response> {
    const token = url.searchParams.get("token");
    if (!token) {
      throw storageError(
        400,
        "InvalidRequest",
        "Bad Request",
        "querystring must have required property 'token'",
      );
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.signingKey, { algorithms: ["HS256"] }));
    } catch (error) {
      const message = error instanceof joseErrors.JWTExpired
        ? "jwt expired"
        : error instanceof joseErrors.JWSSignatureVerificationFailed
        ? "invalid signature"
        : "jwt malformed";
      throw storageError(400, "InvalidJWT", "InvalidJWT", message);
    }
    if (payload.url !== `${bucketId}/${name}`) {
      throw storageError(
        400,
        "InvalidSignature",
        "InvalidSignature",
        "The url do not match the signature",
      );
    }
    return await this.download(bucketId, name, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Server

export async function startSupabaseStandin(
  options: SupabaseStandinOptions,
): Promise<SupabaseStandin> {
  const ownsDir = options.storageDir === undefined;
  const storageDir = options.storageDir ?? await Deno.makeTempDir({ prefix: "supabase-standin-" });
  const sql = postgres(options.databaseUrl, {
    max: 10,
    onnotice: () => {},
    prepare: false,
    connect_timeout: 10,
  });
  const objects = new ObjectStore(sql, storageDir, crypto.getRandomValues(new Uint8Array(32)));
  const requests: RecordedRequest[] = [];
  const serviceKey = options.serviceKey;

  const authorised = (request: Request): boolean => {
    if (request.headers.get("apikey") !== serviceKey) return false;
    const authorization = request.headers.get("authorization");
    return authorization === null || authorization === `Bearer ${serviceKey}`;
  };

  const route = async (request: Request, url: URL): Promise<Response> => {
    const path = url.pathname;
    const method = request.method;
    const signed = /^\/storage\/v1\/object\/sign\/(.+)$/.exec(path);
    if (signed && method === "GET") {
      const { bucket, name } = splitObjectPath(signed[1]);
      return await objects.signedDownload(url, bucket, name);
    }
    if (!authorised(request)) return json(401, { message: "Invalid API key" });

    const rpc = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(path);
    if (rpc) return await restRpc(sql, request, url, decodeURIComponent(rpc[1]));
    const table = /^\/rest\/v1\/([^/]+)$/.exec(path);
    if (table) return await restTable(sql, request, url, decodeURIComponent(table[1]));

    if (signed && method === "POST") {
      const { bucket, name } = splitObjectPath(signed[1]);
      return await objects.sign(request, bucket, name);
    }
    const authenticated = /^\/storage\/v1\/object\/authenticated\/(.+)$/.exec(path);
    if (authenticated && method === "GET") {
      const { bucket, name } = splitObjectPath(authenticated[1]);
      return await objects.download(bucket, name);
    }
    const bucketOnly = /^\/storage\/v1\/object\/([^/]+)\/?$/.exec(path);
    if (bucketOnly && method === "DELETE") {
      return await objects.remove(request, decodeURIComponent(bucketOnly[1]));
    }
    const object = /^\/storage\/v1\/object\/(.+)$/.exec(path);
    if (object && (method === "POST" || method === "GET")) {
      const { bucket, name } = splitObjectPath(object[1]);
      return method === "POST"
        ? await objects.upload(request, bucket, name)
        : await objects.download(bucket, name);
    }
    throw notImplemented(method, path);
  };

  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const record: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      search: url.search,
      headers: Object.fromEntries(request.headers),
      status: 0,
    };
    requests.push(record);
    let response: Response;
    try {
      response = await route(request, url);
    } catch (error) {
      if (error instanceof Answer) response = error.response;
      else if (error instanceof Rollback) response = error.answer.response;
      else if (isPgError(error)) {
        response = url.pathname.startsWith("/storage/")
          ? storageError(500, "DatabaseError", "DatabaseError", error.message).response
          : fromPgError(error).response;
      } else {
        response = json(500, {
          message: `Supabase test stand-in failed: ${(error as Error)?.message ?? String(error)}`,
        });
      }
    }
    record.status = response.status;
    return response;
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  let closed = false;
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    serviceKey,
    storageDir,
    requests,
    async close() {
      if (closed) return;
      closed = true;
      await server.shutdown();
      await sql.end({ timeout: 5 });
      if (ownsDir) await Deno.remove(storageDir, { recursive: true }).catch(() => {});
    },
  };
}
