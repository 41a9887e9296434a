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
  close(): Promise<void>;
}
