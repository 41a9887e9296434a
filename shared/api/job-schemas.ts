/**
 * The zod schemas of the public API. They validate requests and generate the OpenAPI document,
 * so the two can never disagree.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { ImageBody } from "../images/image-body.ts";
import {
  DEFAULT_MODEL,
  IMAGE_SLOTS,
  JOB_INPUT_FIELDS,
  MAX_PROMPT_CHARS,
  MODEL_IDS,
  MODEL_SPECS,
  type ModelId,
} from "../jobs/models.ts";

/** A file part of a multipart request, spooled as it arrived (see shared/images/spool-image.ts). */
export class UploadedImage {
  constructor(readonly body: ImageBody) {}
}

const imageInput = z
  .union([
    z.string().min(1, "Must not be empty"),
    z.custom<UploadedImage>((value) => value instanceof UploadedImage),
  ])
  .openapi({
    type: "string",
    description:
      "An image: in JSON, base64 (a `data:image/...;base64,` prefix is allowed) or an https URL; " +
      "in multipart/form-data, a file part (or the same strings). Up to 20 MB / 20 megapixels; " +
      "PNG, JPEG, WebP or GIF.",
  });

/** An earlier job of the caller whose stored image fills `slot` (iterative editing). */
const jobReference = (slot: string) =>
  z.uuid("Must be a job id (a UUID)").optional().openapi({
    description: `Use the stored output of one of your succeeded jobs as ${slot}, without downloading it.`,
  });

const ASPECT_RATIO = /^(\d{1,4}):(\d{1,4})$/;

export const CreateJobRequest = z
  .object({
    model: z.enum(MODEL_IDS).default(DEFAULT_MODEL).openapi({
      description: "BFL endpoint. flux-bagel-alpha is the early edit-only endpoint.",
    }),
    prompt: z
      .string()
      .trim()
      .min(1, "Must not be empty")
      .max(MAX_PROMPT_CHARS, `Must be at most ${MAX_PROMPT_CHARS} characters (Kontext reads 512 tokens)`)
      .openapi({ description: "What to generate, or the edit to make." }),
    seed: z.int().optional().openapi({ description: "Seed for reproducible results." }),
    aspect_ratio: z
      .string()
      .regex(ASPECT_RATIO, 'Must look like "W:H", for example "16:9"')
      .refine((value) => {
        const [, w, h] = ASPECT_RATIO.exec(value) ?? [];
        const ratio = Number(w) / Number(h);
        return Number(w) > 0 && Number(h) > 0 && ratio >= 3 / 7 - 1e-9 && ratio <= 7 / 3 + 1e-9;
      }, "Must be between 3:7 and 7:3")
      .optional()
      .openapi({ description: 'Kontext only. "W:H" between 3:7 and 7:3; ~1 MP output. Default 1:1.' }),
    output_format: z.enum(["jpeg", "png"]).default("jpeg"),
    prompt_upsampling: z.boolean().optional().openapi({ description: "Kontext only. Default false." }),
    safety_tolerance: z.int().min(0).max(6).default(2).openapi({
      description: "0 (strictest) to 6. Kontext edits (any input image) allow at most 2.",
    }),
    input_image: imageInput.optional(),
    input_image_2: imageInput.optional().openapi({ description: "Kontext only: extra reference image." }),
    input_image_3: imageInput.optional().openapi({ description: "Kontext only: extra reference image." }),
    input_image_4: imageInput.optional().openapi({ description: "Kontext only: extra reference image." }),
    input_job_id: jobReference("input_image"),
    input_job_id_2: jobReference("input_image_2"),
    input_job_id_3: jobReference("input_image_3"),
    input_job_id_4: jobReference("input_image_4"),
    steps: z.int().min(1).max(150).optional().openapi({ description: "flux-bagel-alpha only. 1–150, default 50." }),
    guidance: z.number().min(0.1).max(99).optional().openapi({
      description: "flux-bagel-alpha only. 0.1–99, default 3.0.",
    }),
  })
  .strict()
  .superRefine((request, ctx) => {
    const spec = MODEL_SPECS[request.model as ModelId];
    const allowed = new Set<string>([
      ...spec.imageSlots,
      ...spec.imageSlots.map((slot) => JOB_INPUT_FIELDS[slot]),
      ...spec.extraParams,
    ]);
    const modelSpecific = [
      "aspect_ratio", "prompt_upsampling", "steps", "guidance", ...IMAGE_SLOTS, ...Object.values(JOB_INPUT_FIELDS),
    ];
    for (const slot of IMAGE_SLOTS) {
      if (request[slot] !== undefined && request[JOB_INPUT_FIELDS[slot]] !== undefined) {
        ctx.addIssue({ code: "custom", path: [JOB_INPUT_FIELDS[slot]], message: `Give ${slot} or ${JOB_INPUT_FIELDS[slot]}, not both` });
      }
    }
    for (const field of modelSpecific) {
      if ((request as Record<string, unknown>)[field] !== undefined && !allowed.has(field)) {
        ctx.addIssue({ code: "custom", path: [field], message: `Not accepted by ${request.model}` });
      }
    }
    if (spec.requiresImage && request.input_image === undefined && request.input_job_id === undefined) {
      ctx.addIssue({ code: "custom", path: ["input_image"], message: `Required: ${request.model} only edits images` });
    }
    const isEdit = IMAGE_SLOTS.some((slot) => request[slot] !== undefined || request[JOB_INPUT_FIELDS[slot]] !== undefined);
    const max = isEdit ? spec.safetyToleranceMax.edit : spec.safetyToleranceMax.textToImage;
    if (request.safety_tolerance > max) {
      ctx.addIssue({
        code: "custom",
        path: ["safety_tolerance"],
        message: `Must be at most ${max} for ${request.model} ${isEdit ? "edits" : "text-to-image"}`,
      });
    }
  })
  .openapi("CreateJobRequest");

export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

export const JOB_STATUSES = ["queued", "submitting", "running", "succeeded", "failed", "moderated"] as const;

const ErrorInfo = z.object({
  code: z.string().openapi({ example: "invalid_request" }),
  message: z.string(),
  details: z.unknown().optional(),
});

export const ErrorResponse = z.object({ error: ErrorInfo }).openapi("ErrorResponse");

export const JobView = z
  .object({
    id: z.uuid(),
    model: z.enum(MODEL_IDS),
    status: z.enum(JOB_STATUSES).openapi({
      description: "queued → submitting → running → succeeded | failed | moderated",
    }),
    prompt: z.string(),
    params: z.record(z.string(), z.unknown()).openapi({ description: "Validated parameters, without images." }),
    inputs: z.array(z.object({
      slot: z.string(),
      kind: z.enum(["upload", "url", "job"]),
      job_id: z.uuid().optional().openapi({ description: "For kind job: the job whose output was used." }),
      content_type: z.string().optional(),
      bytes: z.number().optional(),
      url: z.string().optional(),
    })),
    error: ErrorInfo.nullable(),
    provider: z.object({
      status: z.string().nullable().openapi({ description: "BFL's last status, verbatim." }),
      cost: z.number().nullable().openapi({ description: "Credits, as BFL reported them." }),
      input_mp: z.number().nullable(),
      output_mp: z.number().nullable(),
    }),
    image: z.object({
      url: z.string().openapi({ description: "Download URL of the stored copy (time-limited)." }),
      content_type: z.string(),
      bytes: z.number(),
      expires_at: z.string(),
    }).nullable(),
    parent_job_id: z.uuid().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    submitted_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    links: z.object({ self: z.string() }),
  })
  .openapi("Job");

export type JobView = z.infer<typeof JobView>;

export const CreateJobResponse = z
  .object({ id: z.uuid(), status: z.enum(JOB_STATUSES), url: z.string(), job: JobView })
  .openapi("CreateJobAccepted");

export const ListJobsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});

export const ListJobsResponse = z
  .object({ data: z.array(JobView), next_cursor: z.string().nullable() })
  .openapi("JobList");

export const LineageResponse = z
  .object({
    data: z.array(JobView).openapi({ description: "The chain of edits, from the first job to this one." }),
  })
  .openapi("JobLineage");

export const JobIdParam = z.object({ id: z.uuid("Must be a job id (a UUID)") });
