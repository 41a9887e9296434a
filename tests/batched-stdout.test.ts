// The batched log sink: info lines leave in one write per event-loop turn, a warning or error
// first flushes what is pending (so the order holds), and big bursts flush by size.
import assert from "node:assert/strict";
import { createBatchedStdout, type SyncWriter } from "../shared/log/batched-stdout.ts";

function recorder(name: string, log: string[]): SyncWriter & { writes: number } {
  const decoder = new TextDecoder();
  const writer = {
    writes: 0,
    writeSync(bytes: Uint8Array) {
      writer.writes++;
      // Accept at most 1000 bytes at a time, as a pipe may: the sink must loop.
      const taken = bytes.subarray(0, 1000);
      log.push(`${name}:${decoder.decode(taken)}`);
      return taken.byteLength;
    },
  };
  return writer;
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("batched stdout: one write per turn, errors flush first, nothing lost or reordered", async () => {
  const log: string[] = [];
  const out = recorder("out", log);
  const write = createBatchedStdout(out, (line) => log.push(`err:${line}\n`));
  write("a", "info");
  write("b", "info");
  assert.equal(out.writes, 0, "info lines wait for the end of the turn");
  await turn();
  assert.deepEqual(log, ["out:a\nb\n"]);
  write("c", "info");
  write("boom", "error");
  assert.deepEqual(log.slice(1), ["out:c\n", "err:boom\n"], "the pending line goes out before the error");
  await turn();
  assert.equal(log.length, 3, "nothing left to flush");

  const long = "x".repeat(700);
  for (let i = 0; i < 100; i++) write(long, "info"); // 70 KB: past the 64 KiB threshold
  assert.ok(out.writes > 2, "a big burst is written before the turn ends");
  await turn();
  const written = log.filter((line) => line.startsWith("out:")).map((line) => line.slice(4)).join("");
  assert.equal(written, `a\nb\nc\n${`${long}\n`.repeat(100)}`);
});

Deno.test("LOG_UNBATCHED=true makes a new process write every line at once through the console", async () => {
  const script = `import { createLogger } from "${new URL("../shared/log/logger.ts", import.meta.url).href}";
    const log = createLogger();
    log.info("first");
    console.log("between");
    log.info("second");`;
  for (const [unbatched, expected] of [["true", ["first", "between", "second"]], ["false", ["between", "first", "second"]]] as const) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, script],
      env: { LOG_UNBATCHED: unbatched },
    }).output();
    const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
    const order = lines.map((line) => line.startsWith("{") ? JSON.parse(line).event : line);
    assert.deepEqual(order, expected, `LOG_UNBATCHED=${unbatched}`);
  }
});
