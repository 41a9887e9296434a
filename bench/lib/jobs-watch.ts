/**
 * Following jobs from the outside without touching them: a status read of an in-flight job would
 * poll BFL itself, so the benchmarks that count polls watch the server's log lines instead
 * (job.transition to a final status, job.image_stored), then read each finished job once (a
 * finished job is never refreshed) and match it to the simulator's task through its prompt.
 *
 * @module
 */
import type { BflSimulator } from "../../tests/support/bfl-simulator.ts";
import { createJob, FINISHED, getJob } from "./context.ts";
import { parseLog, type ServerProcess } from "./procs.ts";
import { sleep } from "./stats.ts";

export interface FinishedJob {
  id: string;
  prompt: string;
  status: string;
  /** When the simulator's task became Ready (its own clock: Date.now() ms). */
  readyAt?: number;
  /** The job's finished_at: when the image was stored. */
  finishedAt?: number;
  /** finishedAt - readyAt. */
  readyToStoredMs?: number;
  /** The service's own figure (from when it first saw Ready), from job.image_stored. */
  loggedReadyToStoredMs?: number;
}

export class JobWatcher {
  readonly finished = new Map<string, string>();
  readonly stored = new Map<string, number>();
  #off: () => void;

  constructor(server: ServerProcess) {
    const take = (line: string) => {
      const entry = parseLog(line);
      if (!entry || typeof entry.job_id !== "string") return;
      if (entry.event === "job.transition" && FINISHED.includes(entry.to as string)) {
        this.finished.set(entry.job_id, entry.to as string);
      }
      if (entry.event === "job.image_stored") {
        this.stored.set(entry.job_id, Number(entry.ready_to_stored_ms));
      }
    };
    for (const line of server.child.lines) take(line);
    this.#off = server.child.onLine(take);
  }

  async waitFor(ids: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (ids.some((id) => !this.finished.has(id))) {
      if (Date.now() > deadline) {
        const left = ids.filter((id) => !this.finished.has(id)).length;
        throw new Error(`${left} of ${ids.length} jobs did not finish within ${timeoutMs} ms`);
      }
      await sleep(50);
    }
  }

  close(): void {
    this.#off();
  }
}

/**
 * Creates `prompts.length` jobs, `concurrency` requests at a time — or, with `spacingMs`, one
 * every `spacingMs` — and returns their ids in order.
 */
export async function createJobs(
  origin: string,
  prompts: string[],
  concurrency = 8,
  spacingMs = 0,
): Promise<string[]> {
  const ids: string[] = new Array(prompts.length);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < prompts.length) {
      const i = next++;
      if (spacingMs > 0) await sleep(Math.max(0, i * spacingMs - (performance.now() - started)));
      const created = await createJob(origin, { prompt: prompts[i], output_format: "png" });
      if (created.status !== 202) {
        throw new Error(
          `Cannot create job ${i}: ${created.status} ${JSON.stringify(created.body)}`,
        );
      }
      ids[i] = created.body.id as string;
    }
  };
  const workers = spacingMs > 0 ? prompts.length : Math.min(concurrency, prompts.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return ids;
}

/** Reads each finished job once and joins it with its simulator task (by prompt). */
export async function collectFinished(
  origin: string,
  sim: BflSimulator,
  ids: string[],
  watcher: JobWatcher,
): Promise<FinishedJob[]> {
  const byPrompt = new Map(sim.submissions.map((s) => [s.body.prompt as string, s.id]));
  const out: FinishedJob[] = [];
  for (const id of ids) {
    const job = await getJob(origin, id);
    const prompt = job.prompt as string;
    const taskId = byPrompt.get(prompt);
    const readyAt = taskId ? sim.task(taskId)?.readyAt : undefined;
    const finishedAt = job.finished_at ? Date.parse(job.finished_at as string) : undefined;
    out.push({
      id,
      prompt,
      status: job.status as string,
      readyAt,
      finishedAt,
      readyToStoredMs: readyAt !== undefined && finishedAt !== undefined
        ? finishedAt - readyAt
        : undefined,
      loggedReadyToStoredMs: watcher.stored.get(id),
    });
  }
  return out;
}
