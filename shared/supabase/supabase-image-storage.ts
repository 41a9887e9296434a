/**
 * ImageStorage in a private Supabase Storage bucket. Uploads set the content type explicitly (a
 * Uint8Array body would otherwise be stored as text/plain) and upsert, so retrying a store after a
 * crash overwrites the same object instead of failing or duplicating. Clients download through
 * signed URLs; the bucket itself is never public.
 *
 * @module
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import type { ImageStorage, StoredObject } from "../storage/image-storage.ts";

export const DEFAULT_BUCKET = "images";

export class SupabaseImageStorage implements ImageStorage {
  constructor(private readonly client: SupabaseClient, private readonly bucket = DEFAULT_BUCKET) {}

  async put(path: string, data: Uint8Array | ReadableStream<Uint8Array>, contentType: string): Promise<void> {
    // A Blob would make supabase-js send multipart and a stream a chunked upload; the plain
    // bytes keep the upload a single request with a Content-Length.
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(await new Response(data).arrayBuffer());
    const { error } = await this.client.storage.from(this.bucket).upload(path, bytes, { contentType, upsert: true });
    if (error) throw new Error(`Cannot store ${path}: ${error.message}`);
  }

  async get(path: string): Promise<StoredObject | null> {
    const { data, error } = await this.client.storage.from(this.bucket).download(path);
    if (error) {
      // Storage answers a missing object with HTTP 400 and statusCode "404" (code NoSuchKey); a
      // missing *bucket* looks similar but is a configuration error and must not read as "no object".
      const details = error as { statusCode?: string; code?: string };
      const missingBucket = details.code === "NoSuchBucket" || /bucket not found/i.test(error.message);
      const missingObject = details.code === "NoSuchKey" || details.statusCode === "404" || /object not found/i.test(error.message);
      if (missingObject && !missingBucket) return null;
      throw new Error(`Cannot read ${path}: ${error.message}`);
    }
    return { bytes: new Uint8Array(await data.arrayBuffer()), contentType: data.type || "application/octet-stream" };
  }

  async remove(paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    const { error } = await this.client.storage.from(this.bucket).remove(paths);
    if (error) throw new Error(`Cannot remove ${paths.length} object(s): ${error.message}`);
  }

  async signedUrl(path: string, ttlSeconds: number): Promise<string> {
    const { data, error } = await this.client.storage.from(this.bucket).createSignedUrl(path, ttlSeconds);
    if (error) throw new Error(`Cannot sign a URL for ${path}: ${error.message}`);
    return data.signedUrl;
  }
}
