/**
 * What each supported BFL endpoint accepts, from the provider's documentation
 * (../shared/reference/bfl-api.md §2 for Kontext pro/max, seed 004 for flux-bagel-alpha).
 *
 * @module
 */

export const MODEL_IDS = ["flux-kontext-pro", "flux-kontext-max", "flux-bagel-alpha"] as const;
export type ModelId = typeof MODEL_IDS[number];
export const DEFAULT_MODEL: ModelId = "flux-kontext-pro";

export const IMAGE_SLOTS = ["input_image", "input_image_2", "input_image_3", "input_image_4"] as const;
export type ImageSlot = typeof IMAGE_SLOTS[number];

/** For each image slot, the field that names an earlier job whose stored output to use instead. */
export const JOB_INPUT_FIELDS = {
  input_image: "input_job_id",
  input_image_2: "input_job_id_2",
  input_image_3: "input_job_id_3",
  input_image_4: "input_job_id_4",
} as const satisfies Record<ImageSlot, string>;
export type JobInputField = typeof JOB_INPUT_FIELDS[ImageSlot];

export interface ModelSpec {
  /** Image fields the endpoint accepts, in order. */
  imageSlots: readonly ImageSlot[];
  /** Edit-only endpoints need input_image. */
  requiresImage: boolean;
  /** Parameters only this endpoint accepts beyond prompt/seed/output_format/safety_tolerance. */
  extraParams: readonly string[];
  /** BFL's limit on active tasks for this endpoint (the account-wide limit is 24). */
  maxActiveTasks: number;
  /** Which host serves the endpoint by default. */
  host: "main" | "alpha";
  /**
   * safety_tolerance bounds. The docs disagree (OpenAPI: 0–6; the Kontext pages: 0–2), so:
   * text-to-image on Kontext follows the OpenAPI schema (0–6), Kontext edits follow the edit page
   * (0–2, also what Replicate enforces with input images), bagel follows its own table (0–6).
   */
  safetyToleranceMax: { textToImage: number; edit: number };
}

export const MODEL_SPECS: Record<ModelId, ModelSpec> = {
  "flux-kontext-pro": {
    imageSlots: IMAGE_SLOTS,
    requiresImage: false,
    extraParams: ["aspect_ratio", "prompt_upsampling"],
    maxActiveTasks: 24,
    host: "main",
    safetyToleranceMax: { textToImage: 6, edit: 2 },
  },
  "flux-kontext-max": {
    imageSlots: IMAGE_SLOTS,
    requiresImage: false,
    extraParams: ["aspect_ratio", "prompt_upsampling"],
    maxActiveTasks: 6,
    host: "main",
    safetyToleranceMax: { textToImage: 6, edit: 2 },
  },
  "flux-bagel-alpha": {
    imageSlots: ["input_image"],
    requiresImage: true,
    extraParams: ["steps", "guidance"],
    maxActiveTasks: 24,
    host: "alpha",
    safetyToleranceMax: { textToImage: 6, edit: 6 },
  },
};

/** BFL's account-wide limit on active tasks. */
export const ACCOUNT_MAX_ACTIVE_TASKS = 24;
/** The documented input limit: "up to 20MB" (read as 20 MiB so either reading of MB passes). */
export const MAX_INPUT_IMAGE_BYTES = 20 * 1024 * 1024;
/** …"or 20 megapixels". */
export const MAX_INPUT_IMAGE_PIXELS = 20_000_000;
/** Kontext's limit is 512 tokens; ~4 characters a token for English text. */
export const MAX_PROMPT_CHARS = 2048;
