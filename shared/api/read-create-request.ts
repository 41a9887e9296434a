/**
 * Reads a create-job request — JSON, or multipart/form-data with image files — into a validated
 * CreateJobRequest plus its decoded, size-checked, sniffed images. Every failure is an ApiError
 * naming the field; nothing is stored or sent anywhere before this has succeeded.
 *
 * Multipart files are streamed to temporary spool files as they arrive (never held whole in
 * memory) and refused as soon as they pass 20 MB. On success the caller owns the images' bodies
 * and must dispose of them (`disposeImages`); on failure they are already gone.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import { ApiError, type FieldIssue } from "../http/api-error.ts";
import { parseMultipart, multipartBoundary, type PartSink } from "../http/parse-multipart.ts";
import { decodeBase64, decodedBase64Length } from "../images/base64.ts";
import { type ImageBody, imageBodyFromBytes } from "../images/image-body.ts";
import { sniffImage } from "../images/sniff-image.ts";
import { ImageSpool, ImageTooLargeError } from "../images/spool-image.ts";
import type { ResolvedImage, ResolvedImages } from "../jobs/job-service.ts";
import { IMAGE_SLOTS, type ImageSlot, MAX_INPUT_IMAGE_BYTES, MAX_INPUT_IMAGE_PIXELS } from "../jobs/models.ts";
import { CreateJobRequest, UploadedImage } from "./job-schemas.ts";

const NUMBER_FIELDS = new Set(["seed", "safety_tolerance", "steps", "guidance"]);
const BOOLEAN_FIELDS = new Set(["prompt_upsampling"]);
const MB = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
/** Text parts other than images (prompt, seed, ...) are small; this only stops abuse. */
const MAX_TEXT_FIELD_BYTES = 64 * 1024;
/** An image sent as a text part (base64, data URI, URL): 20 MB as base64, line breaks and a prefix. */
const MAX_IMAGE_TEXT_BYTES = Math.ceil(MAX_INPUT_IMAGE_BYTES / 3) * 4 * 1.05 + 1024;

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

/** Reads a multipart body part by part: files to spool files, text fields into strings. */
async function readMultipartBody(request: Request, contentType: string): Promise<Record<string, unknown>> {
  const boundary = multipartBoundary(contentType);
  if (!boundary) throw new ApiError(400, "invalid_body", "Cannot read the multipart body: its Content-Type has no boundary");
  if (!request.body) throw new ApiError(400, "invalid_body", "Cannot read the multipart body: it is empty");
  const fields: Record<string, unknown> = {};
  const spools: ImageSpool[] = [];
  try {
    await parseMultipart(request.body, boundary, async (part): Promise<PartSink> => {
      const { name } = part;
      if (Object.hasOwn(fields, name)) throw ApiError.invalidField(name, "Given more than once");
      const isImage = (IMAGE_SLOTS as readonly string[]).includes(name);
      if (part.filename !== undefined) {
        if (!isImage) throw ApiError.invalidField(name, "Only image fields may be files");
        const spool = await ImageSpool.create(MAX_INPUT_IMAGE_BYTES);
        spools.push(spool);
        fields[name] = null; // claimed: a second part with this name is a duplicate
        return {
          async write(chunk) {
            try {
              await spool.write(chunk);
            } catch (error) {
              if (error instanceof ImageTooLargeError) throw tooLarge(name as ImageSlot);
              throw error;
            }
          },
          close() {
            fields[name] = new UploadedImage(spool.finish());
          },
        };
      }
      const limit = isImage ? MAX_IMAGE_TEXT_BYTES : MAX_TEXT_FIELD_BYTES;
      const chunks: Uint8Array[] = [];
      let size = 0;
      fields[name] = null;
      return {
        write(chunk) {
          size += chunk.byteLength;
          if (size > limit) throw ApiError.invalidField(name, `Longer than ${limit} bytes`, 413, "field_too_large");
          chunks.push(chunk);
        },
        close() {
          fields[name] = fromFormValue(name, new TextDecoder().decode(joinChunks(chunks, size)));
        },
      };
    });
  } catch (error) {
    await Promise.all(spools.map((spool) => spool.dispose()));
    throw error;
  }
  return fields;
}

function joinChunks(chunks: Uint8Array[], size: number): Uint8Array {
  const joined = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

async function readBody(request: Request): Promise<Record<string, unknown>> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("multipart/form-data")) return await readMultipartBody(request, request.headers.get("content-type")!);
  if (type.startsWith("application/json") || type === "") {
    let parsed: unknown;
    try {
      parsed = await request.json();
    } catch (error) {
      if (error instanceof ApiError) throw error; // the body limit
      throw new ApiError(400, "invalid_json", "Cannot parse the request body: it is not valid JSON");
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ApiError(400, "invalid_json", "Cannot use the request body: it must be a JSON object");
    }
    return parsed as Record<string, unknown>;
  }
  throw new ApiError(415, "unsupported_media_type", `Cannot read a ${type} body: send application/json or multipart/form-data`);
}

async function checkImage(slot: ImageSlot, body: ImageBody): Promise<ResolvedImage> {
  let sniffed = sniffImage(body.head);
  if (sniffed && !(sniffed.width && sniffed.height) && body.size > body.head.byteLength) {
    // Rare: the size lies past the head (a JPEG with large metadata). Read it all, only then.
    sniffed = sniffImage(new Uint8Array(await new Response(body.stream()).arrayBuffer()));
  }
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
  return { kind: "bytes", body, contentType: sniffed.contentType, format: sniffed.format };
}

const tooLarge = (slot: ImageSlot, size?: number) =>
  ApiError.invalidField(
    slot,
    size === undefined
      ? `Image is larger than the ${MB(MAX_INPUT_IMAGE_BYTES)} limit`
      : `Image is ${MB(size)}; the limit is ${MB(MAX_INPUT_IMAGE_BYTES)}`,
    413,
    "image_too_large",
  );

async function resolveImage(slot: ImageSlot, value: string | UploadedImage): Promise<ResolvedImage> {
  if (value instanceof UploadedImage) {
    if (value.body.size === 0) throw ApiError.invalidField(slot, "The file is empty");
    return await checkImage(slot, value.body);
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
  return await checkImage(slot, imageBodyFromBytes(bytes));
}

/** Frees the images' bodies (deletes spooled uploads); call once a request is done with them. */
export async function disposeImages(images: ResolvedImages): Promise<void> {
  await Promise.all(Object.values(images).map((image) => image?.kind === "bytes" ? image.body.dispose() : undefined));
}

export interface CreateRequestInput {
  request: CreateJobRequest;
  images: ResolvedImages;
  /** The body as the caller sent it, minus images' bytes, for idempotency fingerprints. */
  fields: Record<string, unknown>;
}

export async function readCreateRequest(request: Request): Promise<CreateRequestInput> {
  const body = await readBody(request);
  try {
    const parsed = CreateJobRequest.safeParse(body);
    if (!parsed.success) throw validationError(issuesFromZod(parsed.error));
    const images: ResolvedImages = {};
    for (const slot of IMAGE_SLOTS) {
      const value = parsed.data[slot];
      if (value !== undefined) images[slot] = await resolveImage(slot, value);
    }
    return { request: parsed.data, images, fields: body };
  } catch (error) {
    // Leave nothing behind: spooled uploads of a refused request are deleted now.
    await Promise.all(Object.values(body).map((value) => value instanceof UploadedImage ? value.body.dispose() : undefined));
    throw error;
  }
}
