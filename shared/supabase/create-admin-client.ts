/**
 * The privileged supabase-js client the service uses for rows and Storage. It is built once from
 * SUPABASE_URL and the secret (service) key and never sees a caller's Authorization header: a
 * service key with a user's token attached would run under that user's RLS policies instead.
 *
 * @module
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";

export function createAdminClient(url: string, secretKey: string, fetchImpl?: typeof fetch): SupabaseClient {
  return createClient(url, secretKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: fetchImpl ? { fetch: fetchImpl } : undefined,
  });
}
