/**
 * `GET /images/playground`: the static playground page (shared/playground/playground-page.ts).
 * The page talks to the API next to its own URL, so mounting the images app under
 * /functions/v1 serves a working playground there too.
 *
 * @module
 */
import type { Hono } from "hono";
import { playgroundHtml } from "./playground-page.ts";

/**
 * Headers for the self-contained pages: no script, style or font may come from anywhere but the
 * page itself (inline); images (signed URLs to stored results, local previews) and API calls
 * (`?api=` may name another origin) may.
 */
export const SELF_CONTAINED_PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'unsafe-inline'",
    "style-src 'unsafe-inline'",
    "img-src * data: blob:",
    "connect-src *",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
};

// deno-lint-ignore no-explicit-any
export function registerPlaygroundRoutes(app: Hono<any>): void {
  const html = playgroundHtml();
  app.get("/images/playground", (c) => c.body(html, 200, SELF_CONTAINED_PAGE_HEADERS));
}
