// The `sweeper` Edge Function: pg_cron → pg_net → here, every few seconds. Config, build, serve.
import { sweeperAppFor } from "../../shared/jobs/sweeper-app.ts";
import { startFunction } from "../../shared/wiring/start-function.ts";

Deno.serve(await startFunction(sweeperAppFor));
