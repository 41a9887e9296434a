/**
 * `deno task demo [--prompt "..."] [--out file]`: one whole job, offline. Starts the BFL simulator
 * (tests/support/bfl-simulator.ts) and the service on the embedded default in a temporary folder,
 * then does what a client does — create, follow, download — over real HTTP, and saves the image.
 */
import { parseArgs } from "node:util";
import { configFromEnv } from "../shared/config/load-config.ts";
import { createLocalServer } from "../shared/local/create-local-server.ts";
import { createLogger } from "../shared/log/logger.ts";
import { buildServices } from "../shared/wiring/build-services.ts";
import { startBflSimulator } from "../tests/support/bfl-simulator.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    prompt: { type: "string", default: "A small furry elephant pet looks out from a cat house" },
    out: { type: "string", default: "demo-output.jpeg" },
  },
});

const sim = await startBflSimulator({ readyAfterMs: 1500 });
const dataDir = await Deno.makeTempDir({ prefix: "images-demo-" });
const config = configFromEnv({
  BFL_API_KEY: sim.key,
  BFL_API_URL: sim.apiUrl,
  BFL_TRUSTED_ORIGINS: `${sim.pollOrigin},${sim.deliveryOrigin}`,
  DATA_DIR: dataDir,
  ALLOW_ANONYMOUS: "true",
});
const services = await buildServices(config, { log: createLogger({ minLevel: "warn" }) });
const server = createLocalServer(services);
const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, server.app.fetch);
const base = `http://127.0.0.1:${http.addr.port}/functions/v1/images`;

try {
  console.log(`BFL simulator: ${sim.apiUrl}   service: ${base}`);
  console.log(`POST ${base}/jobs  {"prompt": ${JSON.stringify(values.prompt)}}`);
  const created = await fetch(`${base}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: values.prompt, aspect_ratio: "4:3" }),
  });
  const accepted = await created.json();
  if (created.status !== 202) throw new Error(`Cannot create the job: ${JSON.stringify(accepted)}`);
  console.log(`→ ${created.status} job ${accepted.id} (${accepted.status}); following ${accepted.url}`);

  let job = accepted.job;
  while (!["succeeded", "failed", "moderated"].includes(job.status)) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    job = await (await fetch(accepted.url)).json();
    console.log(`  status: ${job.status}${job.provider.status ? ` (BFL: ${job.provider.status})` : ""}`);
  }
  if (job.status !== "succeeded") throw new Error(`The job ended ${job.status}: ${job.error?.message}`);
  const image = await fetch(job.image.url);
  await Deno.writeFile(values.out!, new Uint8Array(await image.arrayBuffer()));
  console.log(`Saved ${job.image.bytes} bytes (${job.image.content_type}, ${job.provider.cost} credits) to ${values.out}`);
} finally {
  await server.stop();
  await http.shutdown();
  await services.close();
  await sim.close();
  await Deno.remove(dataDir, { recursive: true });
}
