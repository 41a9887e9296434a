// The `bfl-webhook` Edge Function: BFL's completion callbacks (no JWT; a per-job secret instead).
import { webhookAppFor } from "../../shared/jobs/webhook-app.ts";
import { startFunction } from "../../shared/wiring/start-function.ts";

Deno.serve(await startFunction(webhookAppFor));
