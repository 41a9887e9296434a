/**
 * A throwaway PostgreSQL server for tests: `initdb` into a temporary folder, `pg_ctl start` on a
 * random loopback port (never a public interface), `pg_ctl stop -m immediate` and the folder
 * removed on stop. Needs the server binaries (Debian: `apt-get install postgresql`); pg_cron is
 * optional (`apt-get install postgresql-15-cron`).
 *
 * Also gives the SQL backends a store contract suite runs against: in-memory PGlite and a fresh
 * database per open on one shared cluster.
 *
 * @module
 */
import postgres from "postgres";
import { applyMigrations } from "../../shared/store/apply-migrations.ts";
import { openPglite } from "../../shared/store/pglite-client.ts";
import { openPostgres } from "../../shared/store/postgres-client.ts";
import type { SqlClient } from "../../shared/store/sql-client.ts";

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** The data directory (PGDATA); its parent, a temporary folder, also holds the socket and the log. */
  dataDir: string;
  /** The server log. */
  logFile: string;
  /** Whether pg_cron is preloaded (asked for with `cron: true` and installed). */
  hasCron: boolean;
  /**
   * Runs a script with psql (ON_ERROR_STOP) against the `postgres` database, or `options.database`;
   * returns the unaligned, tuples-only output, trimmed.
   */
  psql(sql: string, options?: { database?: string }): Promise<string>;
  /** Stops the server at once and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

export interface PostgresClusterOptions {
  /** Preload pg_cron (cron.database_name=postgres) when it is installed. */
  cron?: boolean;
}

const INSTALL_HINT = "Install the PostgreSQL server binaries: `apt-get install postgresql` " +
  "(and `apt-get install postgresql-15-cron` for the pg_cron tests), or set PG_BIN_DIR.";

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o755) & 0o111) !== 0;
  } catch {
    return false;
  }
}

function hasServerBinaries(dir: string): boolean {
  return ["initdb", "pg_ctl", "postgres", "psql"].every((name) => isExecutable(`${dir}/${name}`));
}

function commandOutputSync(cmd: string, args: string[]): string | null {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null", stdin: "null" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

let cachedBinDir: string | null | undefined;

/**
 * The folder holding initdb/pg_ctl/postgres/psql, or null: $PG_BIN_DIR, else
 * /usr/lib/postgresql/15/bin, else `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin.
 */
export function findPostgresBinDir(): string | null {
  if (cachedBinDir !== undefined) return cachedBinDir;
  const candidates: string[] = [];
  const fromEnv = Deno.env.get("PG_BIN_DIR");
  if (fromEnv) candidates.push(fromEnv);
  candidates.push("/usr/lib/postgresql/15/bin");
  const fromPgConfig = commandOutputSync("pg_config", ["--bindir"]);
  if (fromPgConfig) candidates.push(fromPgConfig);
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
      .filter((entry) => entry.isDirectory && /^\d+$/.test(entry.name))
      .map((entry) => Number(entry.name))
      .sort((a, b) => b - a);
    for (const version of versions) candidates.push(`/usr/lib/postgresql/${version}/bin`);
  } catch {
    // no Debian-style layout
  }
  cachedBinDir = candidates.find(hasServerBinaries) ?? null;
  return cachedBinDir;
}

/** Whether pg_cron is installed for the server found by findPostgresBinDir(). */
export function pgCronInstalled(): boolean {
  const bin = findPostgresBinDir();
  if (!bin) return false;
  const pgConfig = isExecutable(`${bin}/pg_config`) ? `${bin}/pg_config` : "pg_config";
  const libDir = commandOutputSync(pgConfig, ["--pkglibdir"]);
  const shareDir = commandOutputSync(pgConfig, ["--sharedir"]);
  if (!libDir || !shareDir) return false;
  try {
    Deno.statSync(`${libDir}/pg_cron.so`);
    Deno.statSync(`${shareDir}/extension/pg_cron.control`);
    return true;
  } catch {
    return false;
  }
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function runSync(cmd: string, args: string[]): Ran {
  const out = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .outputSync();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Server-side tools refuse to run as root: as root, run them as the `postgres` OS user. */
function asServerUser(bin: string, args: string[]): [string, string[]] {
  return Deno.uid() === 0 ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
}

function lookupUser(name: string): { uid: number; gid: number } {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((entry) =>
    entry.startsWith(`${name}:`)
  );
  if (!line) {
    throw new Error(
      `Running as root, but there is no '${name}' OS user to run PostgreSQL as. ${INSTALL_HINT}`,
    );
  }
  const fields = line.split(":");
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function readTail(path: string, lines = 30): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no server log)";
  }
}

function describe(ran: Ran): string {
  return `exit ${ran.code}\n${(ran.stderr || ran.stdout).trim()}`;
}

/** Starts a fresh PostgreSQL server on a random 127.0.0.1 port; trust auth for user `postgres`. */
export async function startPostgresCluster(
  options: PostgresClusterOptions = {},
): Promise<PostgresCluster> {
  const bin = findPostgresBinDir();
  if (!bin) {
    throw new Error(
      `No PostgreSQL server binaries found (initdb, pg_ctl, postgres, psql). ${INSTALL_HINT}`,
    );
  }
  const hasCron = (options.cron ?? false) && pgCronInstalled();

  // As root the server runs as `postgres`, which must reach the folder: /tmp, not a private TMPDIR.
  const root = await Deno.makeTempDir({
    prefix: "pg-test-",
    dir: Deno.uid() === 0 ? "/tmp" : undefined,
  });
  const dataDir = `${root}/data`;
  const logFile = `${root}/server.log`;
  const stopArgs = ["-D", dataDir, "-m", "immediate", "-w", "stop"];
  let started = false;
  let stopped = false;

  const stopServer = async () => {
    if (!started) return;
    const [cmd, args] = asServerUser(`${bin}/pg_ctl`, stopArgs);
    await run(cmd, args).catch(() => undefined);
    started = false;
  };
  const removeRoot = async () => {
    await Deno.remove(root, { recursive: true }).catch(() => undefined);
  };

  try {
    await Deno.chmod(root, 0o700);
    if (Deno.uid() === 0) {
      const user = lookupUser("postgres");
      await Deno.chown(root, user.uid, user.gid);
    }

    const [initCmd, initArgs] = asServerUser(`${bin}/initdb`, [
      "-D",
      dataDir,
      "-A",
      "trust",
      "-U",
      "postgres",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ]);
    const init = await run(initCmd, initArgs);
    if (init.code !== 0) throw new Error(`initdb failed: ${describe(init)}`);

    // A free port can be taken between probing and binding: retry with another one.
    let port = 0;
    let lastError = "";
    for (let attempt = 0; attempt < 5 && !started; attempt++) {
      port = freeLoopbackPort();
      const serverOptions = [
        "-c listen_addresses=127.0.0.1",
        `-p ${port}`,
        `-c unix_socket_directories=${root}`,
        "-c fsync=off",
        "-c synchronous_commit=off",
        "-c full_page_writes=off",
        "-c max_connections=100",
        ...(hasCron
          ? ["-c shared_preload_libraries=pg_cron", "-c cron.database_name=postgres"]
          : []),
      ].join(" ");
      const [ctlCmd, ctlArgs] = asServerUser(`${bin}/pg_ctl`, [
        "-D",
        dataDir,
        "-l",
        logFile,
        "-o",
        serverOptions,
        "-w",
        "-t",
        "30",
        "start",
      ]);
      const start = await run(ctlCmd, ctlArgs);
      if (start.code === 0) {
        started = true;
        break;
      }
      lastError = `${describe(start)}\n--- server log ---\n${await readTail(logFile)}`;
      // A half-started server (e.g. one that lost the port race) must not linger.
      const [stopCmd, stopCmdArgs] = asServerUser(`${bin}/pg_ctl`, stopArgs);
      await run(stopCmd, stopCmdArgs).catch(() => undefined);
    }
    if (!started) throw new Error(`pg_ctl start failed: ${lastError}`);

    const psqlArgs = [
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-U",
      "postgres",
    ];
    const psql = async (sql: string, options: { database?: string } = {}): Promise<string> => {
      const ran = await run(`${bin}/psql`, [
        ...psqlArgs,
        "-d",
        options.database ?? "postgres",
        "-f",
        "-",
      ], {
        stdin: sql,
        env: { PGCONNECT_TIMEOUT: "10" },
      });
      if (ran.code !== 0) throw new Error(`psql failed: ${describe(ran)}`);
      return ran.stdout.trim();
    };

    // pg_ctl -w already waited for the postmaster; make sure it answers over TCP too.
    const deadline = Date.now() + 30_000;
    for (let lastProblem = "";;) {
      try {
        const answer = await psql("select 1");
        if (answer === "1") break;
        lastProblem = `unexpected answer ${JSON.stringify(answer)}`;
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `PostgreSQL does not accept connections on 127.0.0.1:${port}: ${lastProblem}\n${await readTail(
            logFile,
          )}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const stop = async () => {
      if (stopped) return;
      stopped = true;
      untrack(stopSync);
      await stopServer();
      await removeRoot();
    };
    const stopSync = () => {
      if (stopped) return;
      stopped = true;
      const [cmd, args] = asServerUser(`${bin}/pg_ctl`, stopArgs);
      try {
        runSync(cmd, args);
      } catch {
        // best effort at exit
      }
      try {
        Deno.removeSync(root, { recursive: true });
      } catch {
        // best effort at exit
      }
    };
    track(stopSync);

    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dataDir,
      logFile,
      hasCron,
      psql,
      stop,
    };
  } catch (error) {
    await stopServer();
    await removeRoot();
    throw error;
  }
}

// Servers still running when the test module unloads (a failing or filtered run never reached
// its final stop) are stopped synchronously, so no postgres process outlives `deno test`.
const running = new Set<() => void>();
let unloadHooked = false;

function track(stopSync: () => void) {
  running.add(stopSync);
  if (!unloadHooked) {
    unloadHooked = true;
    globalThis.addEventListener("unload", () => {
      for (const stop of [...running]) stop();
      running.clear();
    });
  }
}

function untrack(stopSync: () => void) {
  running.delete(stopSync);
}

let shared: Promise<PostgresCluster> | null = null;

/** One cluster per test module, started on first use; stopped by stopSharedPostgresCluster() or at unload. */
export function sharedPostgresCluster(): Promise<PostgresCluster> {
  if (!shared) {
    shared = startPostgresCluster();
    // A failed start is retried by the next caller rather than cached.
    shared.catch(() => {
      shared = null;
    });
  }
  return shared;
}

export async function stopSharedPostgresCluster(): Promise<void> {
  const current = shared;
  shared = null;
  if (current) await (await current.catch(() => null))?.stop();
}

/** `url` with its database name replaced. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates an empty database on `cluster`; returns its name and URL, and a drop() that ends its sessions first. */
export async function createTestDatabase(
  cluster: PostgresCluster,
): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  await cluster.psql(`create database ${name}`);
  return {
    name,
    url: withDatabase(cluster.url, name),
    drop: async () => {
      await cluster.psql(`drop database if exists ${name} with (force)`);
    },
  };
}

export interface OpenedSql {
  sql: SqlClient;
  /** The database's URL (postgres backend only). */
  url?: string;
  /** applyMigrations() on this database again, through `sql`. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

export interface SqlBackend {
  name: "pglite" | "postgres";
  /** Whether statements from one client really run concurrently (a pool on a server) or are serialised. */
  concurrent: boolean;
  /** A fresh, migrated database. */
  open(): Promise<OpenedSql>;
}

/** Applies the migrations to the database at `url` through openPostgres() (its default pool). */
export async function migratePostgres(url: string): Promise<string[]> {
  const sql = openPostgres(url);
  try {
    return await applyMigrations(sql);
  } finally {
    await sql.close();
  }
}

/**
 * The SQL backends a store contract suite runs on, identically: in-memory PGlite, and a fresh
 * database per open on the module's shared PostgreSQL cluster (stop it with
 * stopSharedPostgresCluster() in a final test). Each open() applies the migrations.
 */
export function describeStores(options: { poolSize?: number } = {}): SqlBackend[] {
  return [
    {
      name: "pglite",
      concurrent: false,
      async open() {
        const sql = await openPglite();
        try {
          await applyMigrations(sql);
        } catch (error) {
          await sql.close();
          throw error;
        }
        return { sql, migrate: () => applyMigrations(sql), close: () => sql.close() };
      },
    },
    {
      name: "postgres",
      concurrent: true,
      async open() {
        const cluster = await sharedPostgresCluster();
        const database = await createTestDatabase(cluster);
        const sql = openPostgres(database.url, { max: options.poolSize ?? 10 });
        const close = async () => {
          try {
            await sql.close();
          } finally {
            await database.drop();
          }
        };
        try {
          await applyMigrations(sql);
        } catch (error) {
          await close();
          throw error;
        }
        return { sql, url: database.url, migrate: () => applyMigrations(sql), close };
      },
    },
  ];
}

/** A postgres.js client for `url` (for tests that need transactions or roles), notices silenced. */
export function connect(url: string, options: { max?: number } = {}): postgres.Sql {
  return postgres(url, {
    max: options.max ?? 1,
    onnotice: () => {},
    prepare: false,
    connect_timeout: 10,
  });
}
