/**
 * The port for where image bytes live: Supabase Storage in production, a local folder otherwise.
 * Paths look like `results/<user>/<job>.png` and `inputs/<user>/<job>/input_image.png`.
 *
 * @module
 */
export interface StoredObject {
  bytes: Uint8Array;
  contentType: string;
}

export interface ImageStorage {
  /**
   * Writes (or overwrites) an object; the same path twice is idempotent. A stream is consumed
   * as it is written where the backend allows it (a 20 MB upload is never held whole).
   */
  put(path: string, data: Uint8Array | ReadableStream<Uint8Array>, contentType: string): Promise<void>;
  get(path: string): Promise<StoredObject | null>;
  remove(paths: string[]): Promise<void>;
  /**
   * A URL from which the object downloads without further credentials, valid for `ttlSeconds`.
   * `publicBaseUrl` is where this service is reachable (local storage serves through it).
   */
  signedUrl(path: string, ttlSeconds: number, publicBaseUrl: string): Promise<string>;
}
