/**
 * `deno task generate "prompt" [options]`: creates one image and saves it.
 *
 * By default it calls a running server (http://localhost:8000/images, `deno task start`) with the
 * typed client (clients/typescript/images-client.ts); `--local` runs the service in this process
 * on the embedded default instead (PGlite + DATA_DIR, BFL_API_KEY from the environment or .env),
 * without opening a port. Progress goes to stderr; stdout gets only the saved file's path (or,
 * with --json, one JSON object). Exit codes: 0 done, 1 error (API, job failed or moderated, I/O),
 * 2 usage.
 */
import { parseArgs } from "node:util";
import { basename, extname } from "node:path";
import {
  createImagesClient,
  IMAGE_SLOTS,
  ImagesApiError,
  type ImageSlot,
  type Job,
  MODEL_IDS,
  type ModelId,
  OUTPUT_FORMATS,
  type OutputFormat,
} from "../clients/typescript/images-client.ts";

const USAGE = `Usage: deno task generate "prompt" [options]

  --image FILE          an input image (repeat for up to 4: input_image, input_image_2, ...)
  --edit-job ID         edit the output of an earlier job (input_job_id); --image files then
                        fill input_image_2, ...
  --model M             ${MODEL_IDS.join(" | ")} (default flux-kontext-pro)
  --aspect-ratio W:H    e.g. 16:9 (Kontext only)
  --seed N              an integer
  --format F            jpeg | png (default jpeg)
  --out FILE            where to save the image (default <job id>.<ext> in this folder)
  --json                print {id, status, path, job} as JSON on stdout instead of the path
  --server URL          the API base (default http://localhost:8000/images)
  --token T             access token, sent as Authorization: Bearer (default $IMAGES_TOKEN)
  --local               run the service in this process instead of calling a server
  -h, --help            this text
`;

class UsageError extends Error {}

const EXTENSIONS: Record<string, string> = { "image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/gif": "gif" };
const CONTENT_TYPES: Record<string, string> = { ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif" };
const TERMINAL = new Set(["succeeded", "failed", "moderated"]);

function readArgs(args: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        image: { type: "string", multiple: true, default: [] },
        model: { type: "string" },
        out: { type: "string" },
        json: { type: "boolean", default: false },
        server: { type: "string" },
        token: { type: "string" },
        "aspect-ratio": { type: "string" },
        seed: { type: "string" },
        format: { type: "string" },
        "edit-job": { type: "string" },
        local: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true as const };
  if (positionals.length === 0) throw new UsageError("Give the prompt as the first argument");
  if (positionals.length > 1) throw new UsageError(`Give the prompt as one argument (quote it); got ${positionals.length}: ${positionals.join(" | ")}`);
  if (values.model !== undefined && !(MODEL_IDS as readonly string[]).includes(values.model)) {
    throw new UsageError(`--model must be one of ${MODEL_IDS.join(", ")}`);
  }
  if (values.format !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(values.format)) {
    throw new UsageError("--format must be jpeg or png");
  }
  if (values.seed !== undefined && !/^-?\d+$/.test(values.seed)) throw new UsageError("--seed must be an integer");
  if (values.local && values.server) throw new UsageError("--local and --server exclude each other");
  const images = values.image ?? [];
  const firstSlot = values["edit-job"] ? 1 : 0;
  if (images.length > IMAGE_SLOTS.length - firstSlot) {
    throw new UsageError(`At most ${IMAGE_SLOTS.length - firstSlot} --image files${firstSlot ? " with --edit-job" : ""}`);
  }
  if (values.server) {
    try {
      new URL(values.server);
    } catch {
      throw new UsageError(`--server must be a URL, e.g. http://localhost:8000/images (got "${values.server}")`);
    }
  }
  return {
    help: false as const,
    prompt: positionals[0],
    images,
    slots: IMAGE_SLOTS.slice(firstSlot, firstSlot + images.length) as ImageSlot[],
    model: values.model as ModelId | undefined,
    format: values.format as OutputFormat | undefined,
    seed: values.seed === undefined ? undefined : Number(values.seed),
    aspectRatio: values["aspect-ratio"],
    editJob: values["edit-job"],
    out: values.out,
    json: values.json ?? false,
    server: values.server ?? "http://localhost:8000/images",
    token: values.token ?? (Deno.env.get("IMAGES_TOKEN") || undefined),
    local: values.local ?? false,
  };
}

/** Status on stderr: a spinner on a terminal, one line per change otherwise. */
function createProgress() {
  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  const write = (text: string) => Deno.stderr.writeSync(encoder.encode(text));
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let text = "";
  let last = "";
  let frame = 0;
  const started = Date.now();
  const timer = tty
    ? setInterval(() => {
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      write(`\r\x1b[2K${frames[frame++ % frames.length]} ${text} ${seconds}s`);
    }, 100)
    : undefined;
  return {
    update(status: string) {
      text = status;
      if (!tty && status !== last) write(`${status}\n`);
      last = status;
    },
    done() {
      clearInterval(timer);
      if (tty) write("\r\x1b[2K");
    },
  };
}

const describe = (job: Job) =>
  `job ${job.id}: ${job.status}${job.provider.status ? ` (BFL: ${job.provider.status})` : ""}`;

function errorLines(error: unknown): string {
  if (error instanceof ImagesApiError) {
    const fields = error.fieldErrors.map((d) => `\n  ${d.field}: ${d.message}`).join("");
    const hint = error.code === "network_error"
      ? "\n  Is the server running (deno task start)? Point --server at it, or use --local."
      : "";
    return `Error: ${error.message}${error.status ? ` (HTTP ${error.status}, ${error.code})` : ""}${fields}${hint}`;
  }
  return `Error: ${(error as Error)?.message ?? error}`;
}

/** A fetch that calls the in-process service, plus how to stop it (--local). */
async function startLocal(): Promise<{ fetch: typeof fetch; stop: () => Promise<void> }> {
  const { loadConfig, LOCAL_USER_ID } = await import("../shared/config/load-config.ts");
  const { buildServices } = await import("../shared/wiring/build-services.ts");
  const { createLocalServer } = await import("../shared/local/create-local-server.ts");
  const { createLogger } = await import("../shared/log/logger.ts");
  const config = await loadConfig();
  if (config.store === "embedded" && Deno.env.get("ALLOW_ANONYMOUS") !== "false" && !config.anonymousUserId) {
    config.anonymousUserId = LOCAL_USER_ID;
  }
  const services = await buildServices(config, {
    log: createLogger({ minLevel: "warn", write: (line) => console.error(line) }),
  });
  const server = createLocalServer(services); // its sweeper loop advances the job meanwhile
  return {
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => Promise.resolve(server.app.fetch(new Request(input, init)))) as typeof fetch,
    stop: async () => {
      await server.stop();
      await services.close();
    },
  };
}

async function run(args: string[]): Promise<number> {
  let options;
  try {
    options = readArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }

  const files: Partial<Record<ImageSlot, Blob>> = {};
  for (const [index, path] of options.images.entries()) {
    try {
      const bytes = await Deno.readFile(path);
      const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
      files[options.slots[index]] = new File([bytes], basename(path), { type });
    } catch (error) {
      console.error(`Error: cannot read --image ${path}: ${(error as Error).message}`);
      return 1;
    }
  }

  const progress = createProgress();
  let local: Awaited<ReturnType<typeof startLocal>> | undefined;
  try {
    if (options.local) {
      progress.update("starting the local service ...");
      local = await startLocal();
    }
    const fetchImpl = local?.fetch ?? fetch;
    const client = createImagesClient({
      baseUrl: local ? "http://local.invalid/images" : options.server,
      getAccessToken: () => options.token,
      fetch: fetchImpl,
    });
    progress.update("submitting ...");
    const accepted = await client.createJob({
      prompt: options.prompt,
      model: options.model,
      seed: options.seed,
      aspect_ratio: options.aspectRatio,
      output_format: options.format,
      input_job_id: options.editJob,
      files,
    });
    progress.update(describe(accepted.job));
    const job = TERMINAL.has(accepted.job.status)
      ? accepted.job
      : await client.waitForJob(accepted.id, { intervalMs: local ? 500 : 1000, onUpdate: (j) => progress.update(describe(j)) });
    progress.done();

    if (job.status !== "succeeded" || !job.image) {
      const reason = job.error ? `${job.error.message} (${job.error.code})` : "no image";
      console.error(`Error: job ${job.id} ended ${job.status}: ${reason}`);
      if (job.error?.details) console.error(`  details: ${JSON.stringify(job.error.details)}`);
      if (options.json) console.log(JSON.stringify({ id: job.id, status: job.status, path: null, job }));
      return 1;
    }
    const download = await fetchImpl(job.image.url);
    if (!download.ok) throw new Error(`Cannot download the image: HTTP ${download.status} from ${job.image.url}`);
    const ext = EXTENSIONS[job.image.content_type] ?? (job.params.output_format as string | undefined) ?? "img";
    const path = options.out ?? `${job.id}.${ext}`;
    await Deno.writeFile(path, new Uint8Array(await download.arrayBuffer()));
    console.error(`Saved ${job.image.bytes} bytes (${job.image.content_type}${job.provider.cost !== null ? `, ${job.provider.cost} credits` : ""})`);
    console.log(options.json ? JSON.stringify({ id: job.id, status: job.status, path, job }) : path);
    return 0;
  } catch (error) {
    progress.done();
    console.error(errorLines(error));
    return 1;
  } finally {
    await local?.stop();
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
