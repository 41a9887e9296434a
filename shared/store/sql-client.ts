/**
 * The little a SQL job store needs from a driver, so PGlite and postgres.js can share one store.
 *
 * @module
 */
export interface SqlClient {
  /** Runs one parameterised statement ($1, $2, ...) and returns its rows. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** Runs `work` in one transaction on one connection: all of it commits, or none. */
  transaction<T>(work: (tx: Pick<SqlClient, "query" | "exec">) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
