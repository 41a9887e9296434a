// `deno task generate` (scripts/generate.ts) as a real subprocess against the service over HTTP,
// and once with --local (the service in the CLI's own process, against the BFL simulator).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { sniffImage } from "../shared/images/sniff-image.ts";
import { decodeBase64 } from "../shared/images/base64.ts";
import { startHarness } from "./support/harness.ts";
import { makeJpeg, makePng } from "./support/test-images.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const script = `${root}scripts/generate.ts`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function generate(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${root}deno.json`, script, ...args],
    cwd: options.cwd,
    env: { DENO_TLS_CA_STORE: "system", NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("generate CLI: --image and --json against a server; the default file name; --edit-job", async () => {
  const h = await startHarness();
  const dir = await Deno.makeTempDir({ prefix: "generate-cli-" });
  try {
    const input = makePng(48, 32, 11);
    await Deno.writeFile(`${dir}/input.png`, input);
    const out = `${dir}/result.png`;
    const run = await generate([
      "Turn it into a watercolor",
      "--server", h.base, "--image", `${dir}/input.png`, "--format", "png", "--seed", "5", "--out", out, "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.equal(lines.length, 1, `stdout must hold one JSON object, got: ${run.stdout}`);
    const result = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(result).sort(), ["id", "job", "path", "status"]);
    assert.equal(result.status, "succeeded");
    assert.equal(result.path, out);
    assert.equal(result.job.id, result.id);
    assert.equal(result.job.status, "succeeded");
    assert.equal(result.job.inputs[0].kind, "upload");
    assert.equal(sniffImage(await Deno.readFile(out))?.format, "png");
    assert.match(run.stderr, /running|succeeded/, "progress goes to stderr");
    const submitted = h.sim.submissions[0].body;
    assert.deepEqual(decodeBase64(submitted.input_image as string), input);
    assert.equal(submitted.seed, 5);
    assert.equal(submitted.output_format, "png");

    // Default name <job id>.<ext> in the working folder; stdout is the path alone. --edit-job puts
    // the earlier output in input_image and the files after it.
    await Deno.writeFile(`${dir}/ref.jpg`, makeJpeg(24, 24, 2));
    const edit = await generate(["Add a hat", "--server", h.base, "--edit-job", result.id, "--image", "ref.jpg"], { cwd: dir });
    assert.equal(edit.code, 0, edit.stderr);
    const path = edit.stdout.trim();
    assert.match(path, /^[0-9a-f-]{36}\.jpeg$/);
    assert.equal(sniffImage(await Deno.readFile(`${dir}/${path}`))?.format, "jpeg");
    const editedId = path.replace(".jpeg", "");
    const edited = await (await fetch(`${h.base}/jobs/${editedId}`)).json();
    assert.equal(edited.parent_job_id, result.id);
    assert.deepEqual(edited.inputs.map((i: { slot: string; kind: string }) => [i.slot, i.kind]), [
      ["input_image", "job"],
      ["input_image_2", "upload"],
    ]);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("generate CLI: usage errors exit 2, API errors and moderated jobs exit 1 with the message", async () => {
  const h = await startHarness();
  try {
    const noPrompt = await generate(["--server", h.base]);
    assert.equal(noPrompt.code, 2);
    assert.match(noPrompt.stderr, /Give the prompt/);
    assert.match(noPrompt.stderr, /Usage: deno task generate/);
    assert.equal(noPrompt.stdout, "");
    const badFormat = await generate(["x", "--format", "gif"]);
    assert.equal(badFormat.code, 2);
    assert.match(badFormat.stderr, /--format must be jpeg or png/);
    const unknown = await generate(["x", "--colour", "red"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown option '--colour'/);

    const empty = await generate(["  ", "--server", h.base, "--json"]);
    assert.equal(empty.code, 1);
    assert.equal(empty.stdout, "");
    assert.match(empty.stderr, /Invalid request: prompt: Must not be empty \(HTTP 400, invalid_request\)/);
    assert.match(empty.stderr, /prompt: Must not be empty/);

    const moderated = await generate(["[sim:content-moderated] a cat", "--server", h.base]);
    assert.equal(moderated.code, 1);
    assert.equal(moderated.stdout, "");
    assert.match(moderated.stderr, /ended moderated: BFL's moderation flagged the generated image \(not charged\) \(content_moderated\)/);

    const missingFile = await generate(["x", "--server", h.base, "--image", "/nonexistent/file.png"]);
    assert.equal(missingFile.code, 1);
    assert.match(missingFile.stderr, /cannot read --image \/nonexistent\/file\.png/);

    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    const down = await generate(["x", "--server", `http://127.0.0.1:${port}/images`]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /Cannot reach http:\/\/127\.0\.0\.1:\d+\/images\/jobs/);
    assert.equal(h.sim.submissions.length, 1, "only the moderated job reached BFL");
  } finally {
    await h.close();
  }
});

Deno.test("generate CLI: --local runs the service in-process (embedded default) and saves the image", async () => {
  const h = await startHarness();
  const dir = await Deno.makeTempDir({ prefix: "generate-local-" });
  try {
    const run = await generate(["A lighthouse at dusk", "--local", "--json", "--aspect-ratio", "16:9"], {
      cwd: dir,
      env: {
        BFL_API_KEY: h.sim.key,
        BFL_API_URL: h.sim.apiUrl,
        BFL_TRUSTED_ORIGINS: `${h.sim.pollOrigin},${h.sim.deliveryOrigin}`,
        DATA_DIR: `${dir}/data`,
        POLL_INTERVAL_MS: "100",
        SWEEP_INTERVAL_MS: "50",
      },
    });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.status, "succeeded");
    assert.equal(result.path, `${result.id}.jpeg`);
    assert.equal(sniffImage(await Deno.readFile(`${dir}/${result.path}`))?.format, "jpeg");
    assert.equal(h.sim.submissions.length, 1);
    assert.equal(h.sim.submissions[0].body.aspect_ratio, "16:9");
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
