/**
 * A log sink that batches lines into one stdout write per event-loop turn (or per 64 KiB).
 * `console.log` formats its argument and makes a write system call for every line; under load
 * that was the largest single cost of a status read (one `http.request` line each). Warnings and
 * errors, which are rare, still go out at once through `console.error` (stderr), after whatever
 * info lines were pending, so the order of lines is kept. Pending lines are written when the process exits normally; a killed process
 * loses at most the current turn's lines.
 *
 * Used outside the Supabase Edge Runtime only: there `console.*` is what the platform collects.
 *
 * @module
 */
import type { LogLevel } from "./logger.ts";

const FLUSH_BYTES = 64 * 1024;

export interface SyncWriter {
  writeSync(bytes: Uint8Array): number;
}

// Looked up once: in Deno 2.1 every lookup of `console` as a global costs a stack walk.
const cons = globalThis.console;

export function createBatchedStdout(
  out: SyncWriter = Deno.stdout,
  writeError: (line: string) => void = (line) => cons.error(line),
): (line: string, level: LogLevel) => void {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let pendingChars = 0;
  let scheduled = false;

  const writeAll = (writer: SyncWriter, text: string) => {
    const bytes = encoder.encode(text);
    for (let written = 0; written < bytes.byteLength;) written += writer.writeSync(bytes.subarray(written));
  };
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    pendingChars = 0;
    try {
      writeAll(out, text);
    } catch {
      // stdout is gone (a closed pipe): losing log lines must not take the service down.
    }
  };
  globalThis.addEventListener("unload", flush);

  return (line, level) => {
    if (level === "warn" || level === "error") {
      flush();
      writeError(line);
      return;
    }
    pending.push(`${line}\n`);
    pendingChars += line.length + 1;
    if (pendingChars >= FLUSH_BYTES) return flush();
    if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  };
}
