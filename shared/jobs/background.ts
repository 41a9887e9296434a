/**
 * Runs work after the response has been sent. On the Edge Runtime that is
 * `EdgeRuntime.waitUntil`, which keeps the worker alive until the promise settles (within the
 * platform's wall-clock limit); elsewhere (Deno, tests) the promise simply runs on.
 *
 * @module
 */
export type Background = (work: Promise<unknown>) => void;

export function runtimeBackground(): Background {
  const edge = (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } }).EdgeRuntime;
  return (work) => {
    const settled = work.catch(() => {});
    if (edge) edge.waitUntil(settled);
  };
}
