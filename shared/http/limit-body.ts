/**
 * Refuses request bodies over `maxBytes` with a 413, without buffering them. Hono's bodyLimit
 * reads a body sent without Content-Length (chunked) whole into memory to count it; this wraps it
 * in a counting stream instead, so a streaming reader downstream (the multipart parser) still
 * streams, and the 413 surfaces as the error of its next read.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./api-error.ts";

export interface LimitBodyOptions {
  maxBytes: number;
}

export function limitBody(options: LimitBodyOptions): MiddlewareHandler {
  const tooLarge = () =>
    new ApiError(413, "payload_too_large", `Request body is larger than the ${options.maxBytes} bytes this server accepts`);
  return async (c, next) => {
    const request = c.req.raw;
    if (!request.body) return await next();
    const declared = request.headers.get("content-length");
    if (declared !== null && !request.headers.has("transfer-encoding")) {
      // The HTTP server enforces a declared length, so the header alone decides.
      if (Number(declared) > options.maxBytes) throw tooLarge();
      return await next();
    }
    let size = 0;
    const counted = request.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          size += chunk.byteLength;
          if (size > options.maxBytes) controller.error(tooLarge());
          else controller.enqueue(chunk);
        },
      }),
    );
    c.req.raw = new Request(request, { body: counted });
    await next();
  };
}
