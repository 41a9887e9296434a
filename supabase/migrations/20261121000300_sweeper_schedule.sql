-- Every 5 seconds pg_cron asks the `sweeper` Edge Function to advance due jobs, so images are
-- stored even when no client polls. The call goes through pg_net; the project URL and the
-- sweeper's secret are read from Vault at run time (never stored in this file):
--
--   select vault.create_secret('https://<project-ref>.supabase.co', 'project_url');
--   select vault.create_secret('<the SWEEPER_SECRET function secret>', 'sweeper_secret');
--
-- On a database without pg_cron, pg_net or Vault (self-hosted Postgres, PGlite, tests) this
-- migration does nothing and still succeeds; the local server runs its own loop instead.

do $migration$
declare
  sweeper_call constant text := $job$
    select net.http_post(
      url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url')
             || '/functions/v1/sweeper',
      headers := jsonb_build_object(
        'content-type', 'application/json',
        'authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'sweeper_secret')
      ),
      body := '{}'::jsonb,
      timeout_milliseconds := 5000
    )
    where exists (select 1 from vault.decrypted_secrets where name = 'project_url');
  $job$;
begin
  -- Supabase ships these extensions but leaves pg_cron/pg_net to be enabled; try, never fail.
  begin
    create extension if not exists pg_cron;
  exception when others then
    raise notice 'pg_cron is not available (%); the sweeper is not scheduled', sqlerrm;
  end;
  begin
    create extension if not exists pg_net with schema extensions;
  exception when others then
    raise notice 'pg_net is not available (%); the sweeper is not scheduled', sqlerrm;
  end;

  if not exists (select 1 from pg_extension where extname = 'pg_cron')
     or not exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                     where n.nspname = 'net' and p.proname = 'http_post')
     or to_regclass('vault.decrypted_secrets') is null then
    return;
  end if;

  -- cron.schedule with an existing name replaces that job, so re-running is harmless. Sub-minute
  -- schedules need pg_cron 1.5+ (Supabase has it); older versions get every minute instead.
  begin
    perform cron.schedule('image-jobs-sweeper', '5 seconds', sweeper_call);
  exception when others then
    perform cron.schedule('image-jobs-sweeper', '* * * * *', sweeper_call);
  end;
end;
$migration$;
