/**
 * ImageStorage in a local folder (the embedded default). Files are written to a temporary name and
 * renamed, so a reader never sees half an image and a crash never leaves one. The content type is
 * derived from the extension, which the service always sets from the sniffed format.
 *
 * @module
 */
import type { ImageStorage, StoredObject } from "./image-storage.ts";
import type { UrlSigner } from "./url-signer.ts";

const SAFE_PATH = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
const CONTENT_TYPES: Record<string, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
};

export class LocalImageStorage implements ImageStorage {
  constructor(private readonly root: string, private readonly signer: UrlSigner) {}

  #file(path: string): string {
    if (!SAFE_PATH.test(path) || path.includes("..")) {
      throw new Error(`Cannot use storage path "${path}": not a safe relative path`);
    }
    return `${this.root}/${path}`;
  }

  async put(path: string, data: Uint8Array | ReadableStream<Uint8Array>, _contentType: string): Promise<void> {
    const file = this.#file(path);
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    const temp = `${file}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.writeFile(temp, data);
      await Deno.rename(temp, file);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
  }

  async get(path: string): Promise<StoredObject | null> {
    try {
      const bytes = await Deno.readFile(this.#file(path));
      const extension = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
      return { bytes, contentType: CONTENT_TYPES[extension] ?? "application/octet-stream" };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async remove(paths: string[]): Promise<void> {
    for (const path of paths) {
      await Deno.remove(this.#file(path)).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
  }

  async signedUrl(path: string, ttlSeconds: number, publicBaseUrl: string): Promise<string> {
    this.#file(path);
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
    const signature = await this.signer.sign(path, expires);
    return `${publicBaseUrl}/files/${path}?expires=${expires}&signature=${signature}`;
  }
}
