/**
 * Writes an uploaded image to a temporary file as its bytes arrive, counting, hashing and keeping
 * its head on the way, and refuses it as soon as it passes the size limit. This is what keeps a
 * 20 MB multipart upload from ever being in memory whole (`request.formData()` holds it about
 * three times). The file lives in the system temporary folder — on Supabase Edge Functions the
 * ephemeral `/tmp`, which allows asynchronous writes — and is deleted by `dispose()`.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { IMAGE_HEAD_BYTES, type ImageBody } from "./image-body.ts";

export class ImageTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The image is larger than ${limit} bytes`);
  }
}

export class ImageSpool {
  #size = 0;
  #head = new Uint8Array(0);
  #hash: Hash = createHash("sha256");
  #disposed = false;

  private constructor(readonly path: string, private readonly file: Deno.FsFile, private readonly maxBytes: number) {}

  static async create(maxBytes: number): Promise<ImageSpool> {
    const path = await Deno.makeTempFile({ prefix: "image-upload-" });
    try {
      return new ImageSpool(path, await Deno.open(path, { write: true, truncate: true }), maxBytes);
    } catch (error) {
      await Deno.remove(path).catch(() => {});
      throw error;
    }
  }

  /** Appends a chunk; throws ImageTooLargeError once the total passes the limit. */
  async write(chunk: Uint8Array): Promise<void> {
    this.#size += chunk.byteLength;
    if (this.#size > this.maxBytes) throw new ImageTooLargeError(this.maxBytes);
    if (this.#head.byteLength < IMAGE_HEAD_BYTES) {
      const take = chunk.subarray(0, IMAGE_HEAD_BYTES - this.#head.byteLength);
      const head = new Uint8Array(this.#head.byteLength + take.byteLength);
      head.set(this.#head);
      head.set(take, this.#head.byteLength);
      this.#head = head;
    }
    this.#hash.update(chunk);
    for (let written = 0; written < chunk.byteLength;) {
      written += await this.file.write(chunk.subarray(written));
    }
  }

  /** Closes the file and returns its bytes as an ImageBody (which owns the file from then on). */
  finish(): ImageBody {
    this.file.close();
    const { path } = this;
    const digest = this.#hash.digest("hex");
    return {
      size: this.#size,
      head: this.#head,
      sha256: () => digest,
      stream: () => fileStream(path),
      dispose: () => this.dispose(),
    };
  }

  /** Deletes the file (closing it first if still open). */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    try {
      this.file.close();
    } catch {
      // Already closed by finish().
    }
    await Deno.remove(this.path).catch(() => {});
  }
}

function fileStream(path: string): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      file ??= await Deno.open(path, { read: true });
      const buffer = new Uint8Array(1024 * 1024);
      const read = await file.read(buffer);
      if (read === null) {
        file.close();
        controller.close();
      } else {
        controller.enqueue(buffer.subarray(0, read));
      }
    },
    cancel() {
      file?.close();
    },
  });
}
