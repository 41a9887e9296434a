// The `images` Edge Function: the public job API. Reads config, builds the app, serves.
import { loadConfig } from "../../shared/config/load-config.ts";
import { createImagesApp } from "../../shared/api/create-images-app.ts";
import { buildServices } from "../../shared/wiring/build-services.ts";

const config = await loadConfig();
const services = await buildServices(config);
const app = createImagesApp({
  jobs: services.jobs,
  storage: services.storage,
  log: services.log,
  signer: services.signer,
  auth: { anonymousUserId: config.anonymousUserId },
  providerConfigured: Boolean(services.bfl),
  maxBodyBytes: config.maxBodyBytes,
  publicBaseUrl: config.supabaseUrl ? `${config.supabaseUrl}/functions/v1` : undefined,
});

Deno.serve(app.fetch);
