// The `images` Edge Function: the public job API (/images/jobs...). Config, build, serve.
import { imagesAppFor } from "../../shared/api/create-images-app.ts";
import { startFunction } from "../../shared/wiring/start-function.ts";

Deno.serve(await startFunction(imagesAppFor));
