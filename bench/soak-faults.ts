/**
 * Fault injection over the whole run: every tick, each of three lanes arms its next episode on the
 * simulator's `faults` object, and withdraws the previous one.
 *
 * - submit lane: 429s (BFL's concurrency answer), 500/502/503, a connection dropped before BFL
 *   takes the task and one dropped after (task created and billed, answer lost), slow submits;
 * - poll lane: 500/502/503 on get_result, slow polls;
 * - delivery lane: a result URL whose first download fails, webhooks dropped, duplicated, late.
 *
 * Counted faults ("the next N calls") that no call used before the next tick are withdrawn, so
 * `consumed` is exactly how many calls were hit. Window faults stay on for one tick; `calls` is how
 * many calls of the affected kind the simulator saw meanwhile.
 *
 * @module
 */
import type { BflSimulator, Faults } from "../tests/support/bfl-simulator.ts";

type CountedKey = "submitStatus" | "submitDropConnection" | "pollStatus";
type CounterKey = "submitRequests" | "polls" | "downloads";

interface Episode {
  name: string;
  counted?: { key: CountedKey; times: number; value: () => NonNullable<Faults[CountedKey]> };
  window?: { faults: Partial<Faults>; counter?: CounterKey };
}

export interface EpisodeStats {
  armed: number;
  /** Counted faults: calls that were hit. */
  consumed?: number;
  /** Window faults: calls of the affected kind made while the window was open. */
  calls?: number;
}

const submitStatus = (status: 429 | 500 | 502 | 503, times: number): Episode => ({
  name: `submit ${status}`,
  counted: { key: "submitStatus", times, value: () => ({ status, times }) },
});
const pollStatus = (status: 500 | 502 | 503, times: number): Episode => ({
  name: `poll ${status}`,
  counted: { key: "pollStatus", times, value: () => ({ status, times }) },
});
const drop = (afterAccept: boolean): Episode => ({
  name: afterAccept ? "submit dropped after accept" : "submit dropped before accept",
  counted: { key: "submitDropConnection", times: 1, value: () => ({ times: 1, afterAccept }) },
});
const window = (name: string, faults: Partial<Faults>, counter?: CounterKey): Episode => ({
  name,
  window: { faults, counter },
});
const NOTHING: Episode = { name: "" };

export interface FaultPlan {
  /** Delay of a slow submit / poll (ms). */
  submitDelayMs: number;
  pollDelayMs: number;
  webhookDelayMs: number;
}

function lanes(plan: FaultPlan): Episode[][] {
  return [
    [
      submitStatus(429, 3),
      submitStatus(500, 1),
      window("slow submits", { submitDelayMs: plan.submitDelayMs }, "submitRequests"),
      submitStatus(502, 1),
      drop(false),
      NOTHING,
      submitStatus(429, 2),
      drop(true),
      submitStatus(503, 1),
      NOTHING,
      NOTHING,
    ],
    [
      pollStatus(503, 4),
      window("slow polls", { pollDelayMs: plan.pollDelayMs }, "polls"),
      pollStatus(502, 3),
      NOTHING,
      pollStatus(500, 3),
      NOTHING,
    ],
    [
      window("result URL fails once", { sampleFailOnce: true }, "downloads"),
      window("webhooks dropped", { webhook: "drop" }),
      window("webhooks duplicated", { webhook: "duplicate" }),
      NOTHING,
      window("webhooks late", { webhookDelayMs: plan.webhookDelayMs }),
      window("webhooks dropped", { webhook: "drop" }),
      NOTHING,
    ],
  ];
}

interface Armed {
  episode: Episode;
  value?: NonNullable<Faults[CountedKey]>;
  counterAtStart?: number;
}

export class FaultInjector {
  readonly stats: Record<string, EpisodeStats> = {};
  readonly #sim: BflSimulator;
  readonly #tickMs: number;
  readonly #lanes: Episode[][];
  #tick = 0;
  #timer: number | undefined;
  #armed: Armed[] = [];

  constructor(sim: BflSimulator, tickMs: number, plan: FaultPlan) {
    this.#sim = sim;
    this.#tickMs = tickMs;
    this.#lanes = lanes(plan);
  }

  start(): void {
    this.#step();
    this.#timer = setInterval(() => this.#step(), this.#tickMs);
  }

  /** Withdraws every fault; the simulator behaves normally from here on. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#settle();
  }

  #step(): void {
    this.#settle();
    for (const lane of this.#lanes) {
      const episode = lane[this.#tick % lane.length];
      if (!episode.name) continue;
      const stats = (this.stats[episode.name] ??= { armed: 0 });
      stats.armed++;
      const armed: Armed = { episode };
      if (episode.counted) {
        armed.value = episode.counted.value();
        Object.assign(this.#sim.faults, { [episode.counted.key]: armed.value });
      }
      if (episode.window) {
        Object.assign(this.#sim.faults, episode.window.faults);
        if (episode.window.counter) armed.counterAtStart = this.#sim.counts[episode.window.counter];
      }
      this.#armed.push(armed);
    }
    this.#tick++;
  }

  #settle(): void {
    const faults = this.#sim.faults;
    for (const { episode, value, counterAtStart } of this.#armed) {
      const stats = this.stats[episode.name];
      if (episode.counted && value) {
        const key = episode.counted.key;
        const stillArmed = faults[key] === value;
        const remaining = stillArmed ? (value.times ?? 1) : 0;
        stats.consumed = (stats.consumed ?? 0) + episode.counted.times - remaining;
        if (stillArmed) delete faults[key];
      }
      if (episode.window) {
        for (const key of Object.keys(episode.window.faults) as (keyof Faults)[]) {
          delete faults[key];
        }
        if (episode.window.counter && counterAtStart !== undefined) {
          stats.calls = (stats.calls ?? 0) + this.#sim.counts[episode.window.counter] -
            counterAtStart;
        }
      }
    }
    this.#armed = [];
  }
}
