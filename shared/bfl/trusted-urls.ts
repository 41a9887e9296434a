/**
 * Which URLs the service may fetch on BFL's behalf: https on bfl.ai or its subdomains (api.*,
 * delivery.*), plus origins configured for a simulator. A URL in a forged webhook or a tampered
 * answer can thus never make the service fetch an arbitrary address (SSRF).
 *
 * @module
 */
export function isTrustedProviderUrl(url: string, extraOrigins: string[] = []): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (extraOrigins.includes(parsed.origin)) return true;
  if (parsed.protocol !== "https:" || parsed.username || parsed.password) return false;
  const host = parsed.hostname.toLowerCase();
  return host === "bfl.ai" || host.endsWith(".bfl.ai");
}
