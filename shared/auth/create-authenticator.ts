/**
 * Who is calling, from the request's headers:
 *
 * - an end user: `Authorization: Bearer <Supabase access token>`, verified against the project's
 *   JWKS (asymmetric signing keys) or, for legacy projects, the JWT secret; `sub` is the user id;
 * - a server acting for a user (a mobile app's own backend): `apikey: <server key>` plus
 *   `x-user-id: <uuid>`; server keys are SERVER_API_KEYS or the project's secret key;
 * - nobody: only when anonymous access was explicitly enabled (local use), as that fixed user.
 *
 * Failures are 401s with machine-readable codes; messages never echo a token or a key.
 *
 * @module
 */
import type { JSONWebKeySet, JWTVerifyGetKey } from "jose";
import { ApiError } from "../http/api-error.ts";
import type { Authenticator } from "../http/authenticate.ts";
import { constantTimeEqual } from "./constant-time-equal.ts";

export interface AuthenticatorOptions {
  /** The project's JWKS (SUPABASE_JWKS) — verified locally, no network hop. */
  jwks?: JSONWebKeySet;
  /** Where to fetch the JWKS when not given inline (SUPABASE_URL/auth/v1/.well-known/jwks.json). */
  jwksUrl?: string;
  /** Legacy HS256 projects: the JWT secret. */
  jwtSecret?: string;
  /** Expected `iss` (SUPABASE_URL/auth/v1), when known. */
  issuer?: string;
  /** Keys that identify trusted servers. */
  serverKeys?: string[];
  /** Local use only: the user every unauthenticated caller becomes. */
  anonymousUserId?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const unauthorized = (code: string, message: string) =>
  new ApiError(401, code, message, { headers: { "www-authenticate": 'Bearer realm="images"' } });

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const serverKeys = (options.serverKeys ?? []).filter(Boolean);
  const secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  // jose is loaded on the first token, so functions that never see one (the sweeper, webhooks,
  // anonymous local use) start without it.
  let jose: Promise<typeof import("jose")> | undefined;
  let keySet: JWTVerifyGetKey | undefined;
  const loadJose = async () => {
    const lib = await (jose ??= import("jose"));
    keySet ??= options.jwks
      ? lib.createLocalJWKSet(options.jwks)
      : options.jwksUrl
      ? lib.createRemoteJWKSet(new URL(options.jwksUrl))
      : undefined;
    return lib;
  };

  async function verifyUserToken(token: string): Promise<string> {
    if (token.split(".").length !== 3) throw unauthorized("invalid_token", "The access token is malformed");
    const { decodeProtectedHeader, errors: joseErrors, jwtVerify } = await loadJose();
    let payload;
    try {
      const header = decodeProtectedHeader(token);
      const verifyOptions = { issuer: options.issuer, algorithms: undefined as string[] | undefined };
      if (header.alg === "HS256") {
        if (!secret) throw unauthorized("invalid_token", "HS256 tokens are not accepted by this server");
        ({ payload } = await jwtVerify(token, secret, { ...verifyOptions, algorithms: ["HS256"] }));
      } else {
        if (!keySet) throw unauthorized("invalid_token", "No signing keys are configured to verify the token");
        ({ payload } = await jwtVerify(token, keySet, { ...verifyOptions, algorithms: ["RS256", "ES256", "EdDSA"] }));
      }
    } catch (error) {
      if (error instanceof ApiError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw unauthorized("token_expired", "The access token has expired");
      if (error instanceof joseErrors.JWSSignatureVerificationFailed || error instanceof joseErrors.JWKSNoMatchingKey) {
        throw unauthorized("invalid_signature", "The access token's signature is not valid for this project");
      }
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        throw unauthorized("invalid_token", `The access token's ${error.claim} claim is not acceptable`);
      }
      throw unauthorized("invalid_token", "The access token could not be verified");
    }
    if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
      throw unauthorized("invalid_token", "The access token names no user");
    }
    if (payload.role !== "authenticated") {
      throw unauthorized("invalid_token", "The access token is not a signed-in user's");
    }
    return payload.sub;
  }

  return async (request: Request) => {
    const authorization = request.headers.get("authorization") ?? "";
    const bearer = /^Bearer\s+(.+)$/i.exec(authorization)?.[1]?.trim();
    const apiKey = request.headers.get("apikey") ?? request.headers.get("x-api-key") ?? undefined;

    const serverKey = [apiKey, bearer].find((candidate) =>
      candidate !== undefined && serverKeys.some((key) => constantTimeEqual(candidate, key))
    );
    if (serverKey !== undefined) {
      const userId = request.headers.get("x-user-id") ?? "";
      if (!UUID.test(userId)) {
        throw unauthorized("missing_user", "A server key must name the user it acts for in x-user-id (a UUID)");
      }
      return userId;
    }
    if (bearer && bearer.split(".").length === 3) return await verifyUserToken(bearer);
    if (bearer && !apiKey && !options.anonymousUserId) {
      throw unauthorized("invalid_token", "The bearer credential is neither an access token nor a server key");
    }
    if (options.anonymousUserId) return options.anonymousUserId;
    throw unauthorized("missing_token", "Sign in: send Authorization: Bearer <access token>");
  };
}
