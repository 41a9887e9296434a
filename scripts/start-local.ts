/**
 * `deno task start`: serves the API on localhost with the embedded default (PGlite + a folder
 * under DATA_DIR) unless SUPABASE_URL or DATABASE_URL say otherwise.
 */
import { loadConfig, LOCAL_USER_ID } from "../shared/config/load-config.ts";
import { createLocalServer } from "../shared/local/create-local-server.ts";
import { buildServices } from "../shared/wiring/build-services.ts";

const config = await loadConfig();
// Local use only: with the embedded default and no ALLOW_ANONYMOUS=false, callers need no token.
if (config.store === "embedded" && Deno.env.get("ALLOW_ANONYMOUS") !== "false" && !config.anonymousUserId) {
  config.anonymousUserId = LOCAL_USER_ID;
}
const services = await buildServices(config);
const server = createLocalServer(services);
if (config.anonymousUserId) {
  services.log.warn("config.anonymous_access", { message: "Anonymous access is on (local use): every caller is the local user" });
}
if (!services.bfl) {
  services.log.warn("config.missing_bfl_api_key", {
    message: "BFL_API_KEY is not set: job creation answers 503; reads and health work",
  });
}
const http = Deno.serve({
  port: config.port,
  hostname: "127.0.0.1",
  onListen: ({ hostname, port }) =>
    services.log.info("server.listening", { url: `http://${hostname}:${port}/images`, store: config.store, data_dir: config.dataDir }),
}, server.app.fetch);

const shutdown = async () => {
  await server.stop();
  await http.shutdown();
  await services.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
