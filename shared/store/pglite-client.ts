/**
 * SqlClient over PGlite: Postgres compiled to WebAssembly, running in-process. This is the
 * embedded default, so the service runs with no database server at all.
 *
 * @module
 */
import { PGlite } from "@electric-sql/pglite";
import type { SqlClient } from "./sql-client.ts";

/** Opens (or creates) a PGlite database in `dataDir`, or in memory when dataDir is undefined. */
export async function openPglite(dataDir?: string): Promise<SqlClient> {
  const db = dataDir ? new PGlite(dataDir) : new PGlite();
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
