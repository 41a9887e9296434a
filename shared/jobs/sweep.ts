/**
 * One pass of the sweeper: claim every due job (atomically, so any number of sweepers can run at
 * once) and advance each one step. The local server calls it from a loop; on Supabase, pg_cron
 * calls the sweeper function, which calls it.
 *
 * @module
 */
import { advanceJob, leaseToken, type RunnerDeps } from "./job-runner.ts";

export interface SweepOptions {
  /** Most jobs claimed in one pass. */
  limit?: number;
  /** Jobs advanced at the same time. */
  concurrency?: number;
}

export interface SweepReport {
  claimed: number;
  advanced: number;
  errors: number;
  /** Claimed but left for the next pass because the claim was about to run out. */
  skipped: number;
  /** Resulting status → count. */
  statuses: Record<string, number>;
}

export async function sweep(deps: RunnerDeps, options: SweepOptions = {}): Promise<SweepReport> {
  // The claim hands out at most as many queued jobs as there are free provider slots (counted
  // atomically in SQL); the rest stay unclaimed in the queue.
  const jobs = await deps.store.claimDue(leaseToken(deps.workerId), options.limit ?? 50, deps.leaseSeconds);
  const report: SweepReport = { claimed: jobs.length, advanced: 0, errors: 0, skipped: 0, statuses: {} };
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      // A batch can outlive its claim (slow BFL answers): a job whose lease is nearly over is left
      // for the next pass rather than worked on by two workers at once.
      const remaining = (job.lease_until?.getTime() ?? 0) - Date.now();
      if (remaining < (deps.leaseSeconds * 1000) / 3) {
        report.skipped++;
        continue;
      }
      try {
        const after = await advanceJob(deps, job);
        report.advanced++;
        report.statuses[after.status] = (report.statuses[after.status] ?? 0) + 1;
      } catch (error) {
        // The lease expires and another pass retries the job; one bad job must not stop the rest.
        report.errors++;
        deps.log.error("sweep.job_failed", { job_id: job.id, error: (error as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, jobs.length) }, worker));
  return report;
}

/** Runs `sweep` every `intervalMs` (never two passes at once) until the returned stop() is called. */
export function startSweepLoop(deps: RunnerDeps, intervalMs: number, options: SweepOptions = {}): () => Promise<void> {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  let timer: number | undefined;
  const tick = () => {
    if (stopped) return;
    running = sweep(deps, options)
      .catch((error) => deps.log.error("sweep.failed", { error: (error as Error).message }))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, 0);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
