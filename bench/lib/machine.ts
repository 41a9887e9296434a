/**
 * What the benchmark ran on: CPU model, cores, memory, kernel, Deno and V8 versions.
 *
 * @module
 */
async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  deno: string;
  v8: string;
  loadavg: number[];
}

export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await readText("/proc/cpuinfo");
  const meminfo = await readText("/proc/meminfo");
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const memKb = Number(/^MemTotal:\s*(\d+)/m.exec(meminfo)?.[1] ?? 0);
  return {
    cpuModel,
    cores: navigator.hardwareConcurrency,
    memoryGiB: memKb / 1024 / 1024,
    kernel: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    loadavg: Deno.loadavg(),
  };
}

export function describeMachine(info: MachineInfo): string {
  return `${info.cpuModel}, ${info.cores} cores, ${
    info.memoryGiB.toFixed(1)
  } GiB RAM, ${info.kernel}`;
}

/** CPU seconds used so far by the whole machine, and by this process and its reaped children. */
export async function cpuSnapshot(): Promise<{ at: number; machine: number; mine: number }> {
  const tick = 100; // USER_HZ on Linux
  const stat = await readText("/proc/stat");
  const cpu = /^cpu\s+(.+)$/m.exec(stat)?.[1].trim().split(/\s+/).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal
  const busy = (cpu[0] ?? 0) + (cpu[1] ?? 0) + (cpu[2] ?? 0) + (cpu[5] ?? 0) + (cpu[6] ?? 0) +
    (cpu[7] ?? 0);
  const self = (await readText("/proc/self/stat")).split(") ")[1]?.split(" ") ?? [];
  // Fields 14–17 (utime stime cutime cstime) are 12–15 after the ")": state is field 3.
  const mine = [11, 12, 13, 14].reduce((sum, i) => sum + Number(self[i] ?? 0), 0);
  return { at: performance.now(), machine: busy / tick, mine: mine / tick };
}

/** Cores used on average between two snapshots by processes other than ours. */
export function otherCores(
  a: { at: number; machine: number; mine: number },
  b: { at: number; machine: number; mine: number },
): number {
  const seconds = (b.at - a.at) / 1000;
  return seconds > 0 ? Math.max(0, (b.machine - a.machine) - (b.mine - a.mine)) / seconds : 0;
}

/**
 * Waits (at most `maxMs`) until processes other than ours use less than `threshold` cores over a
 * 5-second window. Returns the last window's figure.
 */
export async function waitForQuiet(
  maxMs: number,
  log: (message: string) => void,
  threshold = 0.25,
): Promise<number> {
  const deadline = Date.now() + maxMs;
  while (true) {
    const before = await cpuSnapshot();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const others = otherCores(before, await cpuSnapshot());
    if (others < threshold || Date.now() > deadline) return others;
    log(`waiting for a quiet machine: other processes use ${others.toFixed(2)} cores`);
  }
}
