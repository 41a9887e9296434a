/**
 * The bare Hono app of bench/bare-hono.ts: a constant JSON answer and nothing of the service.
 *
 * @module
 */
import { Hono } from "hono";

/** A finished job's view, as GET /images/jobs/:id answers it. */
export const JOB = {
  id: "0b6f3c5e-3a4d-4a1c-9a51-2b0c6a4d7e11",
  model: "flux-kontext-pro",
  status: "succeeded",
  prompt: "bench: a small furry elephant pet looks out from a cat house",
  params: {
    prompt: "bench: a small furry elephant pet looks out from a cat house",
    output_format: "jpeg",
    safety_tolerance: 2,
  },
  inputs: [],
  error: null,
  provider: { status: "Ready", cost: 4, input_mp: 0, output_mp: 1.05 },
  image: {
    url:
      "http://127.0.0.1:8000/images/files/results/00000000-0000-4000-8000-000000000000/0b6f3c5e-3a4d-4a1c-9a51-2b0c6a4d7e11.jpeg?expires=1900000000&signature=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    content_type: "image/jpeg",
    bytes: 1234,
    expires_at: "2030-01-01T00:00:00.000Z",
  },
  parent_job_id: null,
  created_at: "2030-01-01T00:00:00.000Z",
  updated_at: "2030-01-01T00:00:00.000Z",
  submitted_at: "2030-01-01T00:00:00.000Z",
  finished_at: "2030-01-01T00:00:00.000Z",
  links: { self: "http://127.0.0.1:8000/images/jobs/0b6f3c5e-3a4d-4a1c-9a51-2b0c6a4d7e11" },
};

/** The bare app (bench/bare-hono.ts serves it; bench/lib/attribution.ts calls it in-process). */
export const bareApp = new Hono();
const app = bareApp;
app.get("/", (c) => c.json(JOB));
app.get("/images/jobs/:id", (c) => c.json(JOB));
app.post("/upload", async (c) => {
  const form = await c.req.formData();
  let bytes = 0;
  for (const [, value] of form.entries()) {
    bytes += typeof value === "string" ? value.length : value.size;
  }
  return c.json({ ...JOB, image: { ...JOB.image, bytes } });
});
