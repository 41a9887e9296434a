/**
 * A small in-process metrics registry rendered in Prometheus' text format. Counters and
 * histograms live in this process (on the Edge Runtime: this worker), so they reset on restart;
 * job counts by status come from the database at scrape time and do not.
 *
 * @module
 */
type Labels = Record<string, string>;

const key = (labels: Labels) =>
  Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "_")}"`).join(",");

interface Histogram {
  buckets: number[];
  series: Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>;
}

export class Metrics {
  #counters = new Map<string, { help: string; series: Map<string, { labels: Labels; value: number }> }>();
  #histograms = new Map<string, Histogram & { help: string }>();

  increment(name: string, help: string, labels: Labels = {}, by = 1): void {
    const counter = this.#counters.get(name) ?? { help, series: new Map() };
    this.#counters.set(name, counter);
    const id = key(labels);
    const current = counter.series.get(id) ?? { labels, value: 0 };
    current.value += by;
    counter.series.set(id, current);
  }

  observe(name: string, help: string, value: number, labels: Labels = {}, buckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]): void {
    const histogram = this.#histograms.get(name) ?? { help, buckets, series: new Map() };
    this.#histograms.set(name, histogram);
    const id = key(labels);
    const current = histogram.series.get(id) ?? { labels, counts: histogram.buckets.map(() => 0), sum: 0, count: 0 };
    histogram.buckets.forEach((bound, index) => {
      if (value <= bound) current.counts[index]++;
    });
    current.sum += value;
    current.count++;
    histogram.series.set(id, current);
  }

  /** Renders everything, plus `gauges` computed by the caller at scrape time. */
  render(gauges: { name: string; help: string; series: { labels: Labels; value: number }[] }[] = []): string {
    const lines: string[] = [];
    for (const gauge of gauges) {
      lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`);
      for (const s of gauge.series) lines.push(`${gauge.name}{${key(s.labels)}} ${s.value}`);
    }
    for (const [name, counter] of this.#counters) {
      lines.push(`# HELP ${name} ${counter.help}`, `# TYPE ${name} counter`);
      for (const s of counter.series.values()) lines.push(`${name}{${key(s.labels)}} ${s.value}`);
    }
    for (const [name, histogram] of this.#histograms) {
      lines.push(`# HELP ${name} ${histogram.help}`, `# TYPE ${name} histogram`);
      for (const s of histogram.series.values()) {
        const base = key(s.labels);
        const sep = base ? "," : "";
        histogram.buckets.forEach((bound, index) => lines.push(`${name}_bucket{${base}${sep}le="${bound}"} ${s.counts[index]}`));
        lines.push(`${name}_bucket{${base}${sep}le="+Inf"} ${s.count}`);
        lines.push(`${name}_sum{${base}} ${s.sum}`, `${name}_count{${base}} ${s.count}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}
