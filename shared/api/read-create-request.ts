/**
 * Reads a create-job request — JSON, or multipart/form-data with image files — into a validated
 * CreateJobRequest plus its decoded, size-checked, sniffed images. Every failure is an ApiError
 * naming the field; nothing is stored or sent anywhere before this has succeeded.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import { ApiError, type FieldIssue } from "../http/api-error.ts";
import { decodeBase64, decodedBase64Length } from "../images/base64.ts";
import { sniffImage } from "../images/sniff-image.ts";
import type { ResolvedImage, ResolvedImages } from "../jobs/job-service.ts";
import { IMAGE_SLOTS, type ImageSlot, MAX_INPUT_IMAGE_BYTES, MAX_INPUT_IMAGE_PIXELS } from "../jobs/models.ts";
import { CreateJobRequest, UploadedImage } from "./job-schemas.ts";

const NUMBER_FIELDS = new Set(["seed", "safety_tolerance", "steps", "guidance"]);
const BOOLEAN_FIELDS = new Set(["prompt_upsampling"]);
const MB = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

export function issuesFromZod(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ field: key, message: "Unknown field" }));
    }
    const field = issue.path.map(String).join(".") || "body";
    return [{ field, message: issue.message }];
  });
}

function validationError(issues: FieldIssue[]): ApiError {
  const summary = issues.map((issue) => `${issue.field}: ${issue.message}`).join("; ");
  return new ApiError(400, "invalid_request", `Invalid request: ${summary}`, { details: issues });
}

/** Turns multipart text values into the JSON types the schema expects. */
function fromFormValue(field: string, value: string): unknown {
  if (NUMBER_FIELDS.has(field) && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  if (BOOLEAN_FIELDS.has(field) && (value === "true" || value === "false")) return value === "true";
  return value;
}

async function readBody(request: Request): Promise<Record<string, unknown>> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("multipart/form-data")) {
    let form: FormData;
    try {
      form = await request.formData();
    } catch {
      throw new ApiError(400, "invalid_body", "Cannot read the multipart body: it is malformed");
    }
    const fields: Record<string, unknown> = {};
    for (const [name, value] of form.entries()) {
      if (Object.hasOwn(fields, name)) throw ApiError.invalidField(name, "Given more than once");
      if (typeof value === "string") fields[name] = fromFormValue(name, value);
      else if ((IMAGE_SLOTS as readonly string[]).includes(name)) fields[name] = new UploadedImage(value);
      else throw ApiError.invalidField(name, "Only image fields may be files");
    }
    return fields;
  }
  if (type.startsWith("application/json") || type === "") {
    let parsed: unknown;
    try {
      parsed = await request.json();
    } catch {
      throw new ApiError(400, "invalid_json", "Cannot parse the request body: it is not valid JSON");
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ApiError(400, "invalid_json", "Cannot use the request body: it must be a JSON object");
    }
    return parsed as Record<string, unknown>;
  }
  throw new ApiError(415, "unsupported_media_type", `Cannot read a ${type} body: send application/json or multipart/form-data`);
}

function checkImageBytes(slot: ImageSlot, bytes: Uint8Array): ResolvedImage {
  const sniffed = sniffImage(bytes);
  if (!sniffed) {
    throw ApiError.invalidField(slot, "Not a PNG, JPEG, WebP or GIF image (checked by its content)", 415, "unsupported_image_type");
  }
  if (sniffed.width && sniffed.height && sniffed.width * sniffed.height > MAX_INPUT_IMAGE_PIXELS) {
    throw ApiError.invalidField(
      slot,
      `Image is ${sniffed.width}×${sniffed.height}; BFL accepts at most 20 megapixels`,
      413,
      "image_too_large",
    );
  }
  return { kind: "bytes", bytes, contentType: sniffed.contentType, format: sniffed.format };
}

const tooLarge = (slot: ImageSlot, size: number) =>
  ApiError.invalidField(slot, `Image is ${MB(size)}; the limit is ${MB(MAX_INPUT_IMAGE_BYTES)}`, 413, "image_too_large");

async function resolveImage(slot: ImageSlot, value: string | UploadedImage): Promise<ResolvedImage> {
  if (value instanceof UploadedImage) {
    if (value.file.size > MAX_INPUT_IMAGE_BYTES) throw tooLarge(slot, value.file.size);
    if (value.file.size === 0) throw ApiError.invalidField(slot, "The file is empty");
    return checkImageBytes(slot, new Uint8Array(await value.file.arrayBuffer()));
  }
  if (/^https?:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw ApiError.invalidField(slot, "Not a valid URL");
    }
    if (url.protocol !== "https:") throw ApiError.invalidField(slot, "Image URLs must use https");
    return { kind: "url", url: url.href };
  }
  const dataUri = /^data:([^;,]*)(;base64)?,/i.exec(value);
  if (dataUri && !dataUri[2]) throw ApiError.invalidField(slot, "Data URIs must be base64-encoded");
  const base64 = dataUri ? value.slice(dataUri[0].length) : value;
  if (decodedBase64Length(base64) > MAX_INPUT_IMAGE_BYTES) throw tooLarge(slot, decodedBase64Length(base64));
  const bytes = decodeBase64(base64);
  if (!bytes) throw ApiError.invalidField(slot, "Cannot decode: not valid base64 (nor an https URL)");
  return checkImageBytes(slot, bytes);
}

export interface CreateRequestInput {
  request: CreateJobRequest;
  images: ResolvedImages;
  /** The body as the caller sent it, minus images' bytes, for idempotency fingerprints. */
  fields: Record<string, unknown>;
}

export async function readCreateRequest(request: Request): Promise<CreateRequestInput> {
  const body = await readBody(request);
  const parsed = CreateJobRequest.safeParse(body);
  if (!parsed.success) throw validationError(issuesFromZod(parsed.error));
  const images: ResolvedImages = {};
  for (const slot of IMAGE_SLOTS) {
    const value = parsed.data[slot];
    if (value !== undefined) images[slot] = await resolveImage(slot, value);
  }
  return { request: parsed.data, images, fields: body };
}
