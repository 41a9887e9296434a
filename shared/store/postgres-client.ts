/**
 * SqlClient over a real PostgreSQL server (npm:postgres), for self-hosting with DATABASE_URL.
 *
 * @module
 */
import postgres from "postgres";
import type { SqlClient } from "./sql-client.ts";

export interface PostgresClientOptions {
  /** Connections in the pool; the Edge Runtime wants few. */
  max?: number;
  connectTimeoutSeconds?: number;
}

export function openPostgres(url: string, options: PostgresClientOptions = {}): SqlClient {
  const sql = postgres(url, {
    max: options.max ?? 5,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    onnotice: () => {},
    // Keep prepared statements off: they break behind transaction poolers (Supavisor, PgBouncer).
    prepare: false,
  });
  return {
    async query<T>(text: string, params: unknown[] = []) {
      // deno-lint-ignore no-explicit-any
      return await sql.unsafe(text, params as any[]) as unknown as T[];
    },
    async exec(script: string) {
      await sql.unsafe(script);
    },
    async transaction(work) {
      // sql.begin pins one connection of the pool for the whole transaction.
      return await sql.begin((tx) =>
        work({
          async query<T>(text: string, params: unknown[] = []) {
            // deno-lint-ignore no-explicit-any
            return await tx.unsafe(text, params as any[]) as unknown as T[];
          },
          async exec(script: string) {
            await tx.unsafe(script);
          },
        })
      ) as Awaited<ReturnType<typeof work>>;
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}
