/**
 * SqlClient over PGlite: Postgres compiled to WebAssembly, running in-process. This is the
 * embedded default, so the service runs with no database server at all.
 *
 * @module
 */
import { PGlite } from "@electric-sql/pglite";
import type { SqlClient } from "./sql-client.ts";

/**
 * PGlite's own start parameters (single-user mode, `-F` = fsync off, ...: unchanged) plus a smaller
 * shared_buffers. The data dir's postgresql.conf says 128MB; in PGlite the buffer pool lives in the
 * WebAssembly heap and all of it is zero-filled at every start (page faults + memory.fill: about
 * 1 ms per MB, so ~100 ms of a restart for 128MB, and ~120 MB more peak RSS) before the first
 * query. With 16MB (2,048 pages) a miss is a read from the OS page cache through NODEFS; on a
 * 129 MB table, lookups and scans were no slower beyond noise. Only memory sizing changes: the
 * data dir format, the WAL, fsync and commit semantics are the same (a `-c` parameter is not
 * written to postgresql.conf, nor recorded in pg_control). Measured with
 * bench/lib/pglite-open-breakdown.ts (postgres start 228 → 103 ms, peak RSS 298 → 180 MB).
 */
const START_PARAMS = [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"];

/** Opens (or creates) a PGlite database in `dataDir`, or in memory when dataDir is undefined. */
export async function openPglite(dataDir?: string): Promise<SqlClient> {
  // The options-object form: `new PGlite(undefined, options)` would ignore `options`.
  const db = new PGlite({ dataDir, startParams: START_PARAMS });
  await db.waitReady;
  return {
    async query<T>(text: string, params: unknown[] = []) {
      const result = await db.query<T>(text, params);
      return result.rows;
    },
    async exec(script: string) {
      await db.exec(script);
    },
    async transaction(work) {
      return await db.transaction((tx) =>
        work({
          async query<T>(text: string, params: unknown[] = []) {
            return (await tx.query<T>(text, params)).rows;
          },
          async exec(script: string) {
            await tx.exec(script);
          },
        })
      );
    },
    async close() {
      await db.close();
    },
  };
}
