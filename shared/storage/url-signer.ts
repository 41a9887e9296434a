/**
 * HMAC-signed, expiring download links for storage that has no signed URLs of its own (the local
 * folder). Same idea as Supabase Storage's signed URLs: the link itself is the credential.
 *
 * @module
 */
import { Buffer } from "node:buffer";

const encoder = new TextEncoder();

export class UrlSigner {
  #key: Promise<CryptoKey>;

  constructor(secret: string) {
    this.#key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
  }

  async sign(path: string, expiresAtSeconds: number): Promise<string> {
    const mac = await crypto.subtle.sign("HMAC", await this.#key, encoder.encode(`${path}\n${expiresAtSeconds}`));
    return Buffer.from(mac).toString("base64url");
  }

  /** Constant-time check (crypto.subtle.verify) that `signature` matches and has not expired. */
  async verify(path: string, expiresAtSeconds: number, signature: string, nowMs = Date.now()): Promise<boolean> {
    if (!Number.isFinite(expiresAtSeconds) || expiresAtSeconds * 1000 < nowMs) return false;
    const mac = Buffer.from(signature, "base64url");
    return await crypto.subtle.verify("HMAC", await this.#key, mac, encoder.encode(`${path}\n${expiresAtSeconds}`));
  }
}
