/// <reference lib="dom" />
/**
 * Browser example: pick a file, create an edit job, follow it, show the image.
 *
 * Markup it expects:
 *
 * ```html
 * <input type="file" id="photo" accept="image/*">
 * <input id="prompt" value="Make it snow">
 * <button id="go">Generate</button>
 * <p id="status" aria-live="polite"></p>
 * <img id="result" alt="">
 * ```
 *
 * In an app, import the client from wherever you vendor it (it is one dependency-free file) and
 * supabase-js from npm; the user's access token is read fresh for every call, so refreshed
 * sessions just work.
 */
import { createClient } from "@supabase/supabase-js";
import { createImagesClient, ImagesApiError } from "../images-client.ts";

const SUPABASE_URL = "https://<project-ref>.supabase.co";
const SUPABASE_PUBLISHABLE_KEY = "<publishable or anon key>";

const supabase = createClient(SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY);

const images = createImagesClient({
  baseUrl: `${SUPABASE_URL}/functions/v1/images`, // locally: http://localhost:8000/images
  getAccessToken: async () => (await supabase.auth.getSession()).data.session?.access_token,
});

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function generate(): Promise<void> {
  const file = $<HTMLInputElement>("photo").files?.[0];
  const status = $<HTMLParagraphElement>("status");
  try {
    status.textContent = "Submitting…";
    const accepted = await images.createJob({
      prompt: $<HTMLInputElement>("prompt").value,
      output_format: "png",
      // With a file: multipart/form-data, no base64 in the browser. Without: text-to-image.
      files: file ? { input_image: file } : undefined,
      // Safe to retry (double clicks, flaky networks): the same key returns the same job.
      idempotencyKey: crypto.randomUUID(),
    });
    const job = await images.waitForJob(accepted.id, {
      intervalMs: 1000,
      onUpdate: (j) => {
        status.textContent = `${j.status}${j.provider.status ? ` (BFL: ${j.provider.status})` : ""}`;
      },
    });
    if (job.status === "succeeded" && job.image) {
      $<HTMLImageElement>("result").src = job.image.url; // a signed, time-limited URL to the stored copy
      status.textContent = "Done";
    } else {
      // failed or moderated: the API explains why in words.
      status.textContent = `${job.status}: ${job.error?.message ?? "no image"}`;
    }
  } catch (error) {
    if (error instanceof ImagesApiError) {
      // e.g. 400 "Invalid request: prompt: Must not be empty", with error.fieldErrors per field;
      // status 0 / network_error when the server cannot be reached.
      const fields = error.fieldErrors.map((d) => `${d.field}: ${d.message}`).join("; ");
      status.textContent = fields ? `${error.message} (${fields})` : error.message;
    } else {
      status.textContent = `Unexpected error: ${(error as Error).message}`;
    }
  }
}

$("go").addEventListener("click", () => void generate());

// Iterating on a result: edit the stored output of an earlier job without downloading it.
export async function editAgain(jobId: string, prompt: string) {
  const { id } = await images.createJob({ prompt, input_job_id: jobId });
  return await images.waitForJob(id);
}
