-- Image jobs: one row per FLUX Kontext request, from submission to the stored image.
--
-- This file is the only definition of the schema. Supabase applies it with `supabase db push`;
-- the embedded default (PGlite) and self-hosted Postgres apply the same file at start-up, after
-- `supabase/bootstrap/supabase-shim.sql` has provided what Supabase itself normally provides
-- (the auth schema, the API roles). Every statement is idempotent: applying it twice is a no-op.

create table if not exists public.image_jobs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  model text not null
    check (model in ('flux-kontext-pro', 'flux-kontext-max', 'flux-bagel-alpha')),
  -- Validated provider parameters. Image bytes are never stored here: image slots hold references
  -- (`inputs`) to copies in Storage, or the caller's https URL.
  params jsonb not null,
  inputs jsonb not null default '[]'::jsonb,
  status text not null default 'queued'
    check (status in ('queued', 'submitting', 'running', 'succeeded', 'failed', 'moderated')),
  provider_status text,
  provider_task_id text,
  polling_url text,
  webhook_secret text,
  cost numeric,
  input_mp numeric,
  output_mp numeric,
  submit_attempts integer not null default 0,
  poll_count integer not null default 0,
  error_code text,
  error_message text,
  error_details jsonb,
  result_path text,
  result_content_type text,
  result_bytes bigint,
  parent_job_id uuid references public.image_jobs (id) on delete set null,
  idempotency_key text,
  request_hash text,
  -- Scheduling: the sweeper picks rows whose next_check_at has passed and whose lease is free.
  next_check_at timestamptz not null default now(),
  lease_owner text,
  lease_until timestamptz,
  -- Millisecond precision, so the list's keyset cursor (JavaScript dates) round-trips exactly.
  created_at timestamptz not null default date_trunc('milliseconds', clock_timestamp()),
  updated_at timestamptz not null default now(),
  submitted_at timestamptz,
  ready_at timestamptz,
  finished_at timestamptz,
  last_checked_at timestamptz
);

-- The caller's listing, newest first, with a keyset cursor on (created_at, id).
create index if not exists image_jobs_user_created_idx
  on public.image_jobs (user_id, created_at desc, id desc);
-- The sweeper only ever looks at unfinished rows, so finished ones never slow it down.
create index if not exists image_jobs_due_idx
  on public.image_jobs (next_check_at)
  where status in ('queued', 'submitting', 'running');
-- Webhooks arrive with the provider's task id.
create unique index if not exists image_jobs_provider_task_idx
  on public.image_jobs (provider_task_id)
  where provider_task_id is not null;
create unique index if not exists image_jobs_idempotency_idx
  on public.image_jobs (user_id, idempotency_key)
  where idempotency_key is not null;
create index if not exists image_jobs_parent_idx
  on public.image_jobs (parent_job_id)
  where parent_job_id is not null;

-- A finished job never moves again, whatever client or adapter writes the row.
create or replace function public.image_jobs_guard()
returns trigger
language plpgsql
as $$
begin
  if old.status in ('succeeded', 'failed', 'moderated') and new.status is distinct from old.status then
    raise exception 'Cannot move image job % from % to %: it is finished', old.id, old.status, new.status
      using errcode = 'check_violation';
  end if;
  new.updated_at := now();
  return new;
end;
$$;

drop trigger if exists image_jobs_guard on public.image_jobs;
create trigger image_jobs_guard
  before update on public.image_jobs
  for each row execute function public.image_jobs_guard();

-- Claims one job for `p_owner` for `p_lease_seconds` if it is unfinished and nobody holds it.
-- Used by a status read that refreshes a job: of many concurrent readers exactly one wins.
create or replace function public.image_jobs_claim(
  p_id uuid,
  p_owner text,
  p_lease_seconds integer,
  p_only_if_due boolean default true
)
returns setof public.image_jobs
language sql
as $$
  update public.image_jobs
     set lease_owner = p_owner,
         lease_until = now() + make_interval(secs => p_lease_seconds)
   where id = p_id
     and status in ('queued', 'submitting', 'running')
     and (lease_until is null or lease_until < now())
     and (not p_only_if_due or next_check_at <= now())
  returning *;
$$;

-- Claims up to `p_limit` due jobs atomically. SKIP LOCKED lets many sweepers run at once without
-- waiting for or double-claiming each other's rows.
create or replace function public.image_jobs_claim_due(
  p_owner text,
  p_limit integer,
  p_lease_seconds integer
)
returns setof public.image_jobs
language sql
as $$
  with due as (
    select id
      from public.image_jobs
     where status in ('queued', 'submitting', 'running')
       and next_check_at <= now()
       and (lease_until is null or lease_until < now())
     order by next_check_at
     limit p_limit
       for update skip locked
  )
  update public.image_jobs j
     set lease_owner = p_owner,
         lease_until = now() + make_interval(secs => p_lease_seconds)
    from due
   where j.id = due.id
  returning j.*;
$$;

-- Applies `p_patch` (a JSON object of column values) to a job the caller holds the lease on and
-- whose status is one of `p_from`; returns nothing when either condition fails, so a stale worker
-- can never overwrite a newer state. Keys absent from the patch keep their value; the lease is
-- released unless the patch keeps it.
create or replace function public.image_jobs_transition(
  p_id uuid,
  p_owner text,
  p_from text[],
  p_patch jsonb
)
returns setof public.image_jobs
language plpgsql
as $$
declare
  r public.image_jobs;
begin
  r := jsonb_populate_record(null::public.image_jobs, p_patch);
  return query
  update public.image_jobs j set
    status = case when p_patch ? 'status' then r.status else j.status end,
    provider_status = case when p_patch ? 'provider_status' then r.provider_status else j.provider_status end,
    provider_task_id = case when p_patch ? 'provider_task_id' then r.provider_task_id else j.provider_task_id end,
    polling_url = case when p_patch ? 'polling_url' then r.polling_url else j.polling_url end,
    webhook_secret = case when p_patch ? 'webhook_secret' then r.webhook_secret else j.webhook_secret end,
    cost = case when p_patch ? 'cost' then r.cost else j.cost end,
    input_mp = case when p_patch ? 'input_mp' then r.input_mp else j.input_mp end,
    output_mp = case when p_patch ? 'output_mp' then r.output_mp else j.output_mp end,
    submit_attempts = case when p_patch ? 'submit_attempts' then r.submit_attempts else j.submit_attempts end,
    poll_count = case when p_patch ? 'poll_count' then r.poll_count else j.poll_count end,
    error_code = case when p_patch ? 'error_code' then r.error_code else j.error_code end,
    error_message = case when p_patch ? 'error_message' then r.error_message else j.error_message end,
    error_details = case when p_patch ? 'error_details' then r.error_details else j.error_details end,
    result_path = case when p_patch ? 'result_path' then r.result_path else j.result_path end,
    result_content_type = case when p_patch ? 'result_content_type' then r.result_content_type else j.result_content_type end,
    result_bytes = case when p_patch ? 'result_bytes' then r.result_bytes else j.result_bytes end,
    next_check_at = case when p_patch ? 'next_check_at' then r.next_check_at else j.next_check_at end,
    submitted_at = case when p_patch ? 'submitted_at' then r.submitted_at else j.submitted_at end,
    ready_at = case when p_patch ? 'ready_at' then r.ready_at else j.ready_at end,
    finished_at = case when p_patch ? 'finished_at' then r.finished_at else j.finished_at end,
    last_checked_at = case when p_patch ? 'last_checked_at' then r.last_checked_at else j.last_checked_at end,
    lease_owner = case when p_patch ? 'lease_owner' then r.lease_owner else null end,
    lease_until = case when p_patch ? 'lease_until' then r.lease_until else null end
  where j.id = p_id
    and j.lease_owner = p_owner
    and j.status = any (p_from)
  returning j.*;
end;
$$;

-- A user's jobs, newest first, after the keyset cursor (p_before_created_at, p_before_id) when
-- given. One definition for every store (PostgREST calls it as an RPC).
create or replace function public.image_jobs_list(
  p_user_id uuid,
  p_limit integer,
  p_before_created_at timestamptz default null,
  p_before_id uuid default null
)
returns setof public.image_jobs
language sql
stable
as $$
  select * from public.image_jobs
   where user_id = p_user_id
     and (p_before_created_at is null or (created_at, id) < (p_before_created_at, p_before_id))
   order by created_at desc, id desc
   limit p_limit;
$$;

-- Counts the jobs that occupy a provider slot, per model, for the concurrency governor.
create or replace function public.image_jobs_active_counts()
returns table (model text, active bigint)
language sql
stable
as $$
  select model, count(*) from public.image_jobs
   where status in ('submitting', 'running') and provider_status is distinct from 'Ready'
   group by model;
$$;

-- Row level security: owners read their own rows; nobody but the service writes.
alter table public.image_jobs enable row level security;

revoke all on table public.image_jobs from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    execute 'revoke all on table public.image_jobs from anon';
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute 'revoke all on table public.image_jobs from authenticated';
    -- Column grants: owners may read their job, but never its webhook secret or lease bookkeeping.
    execute 'grant select (id, user_id, model, params, inputs, status, provider_status, cost, input_mp,
      output_mp, error_code, error_message, error_details, result_path, result_content_type,
      result_bytes, parent_job_id, created_at, updated_at, submitted_at, ready_at, finished_at)
      on table public.image_jobs to authenticated';
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    execute 'grant all on table public.image_jobs to service_role';
  end if;
end;
$$;

drop policy if exists "image_jobs: owners read their own jobs" on public.image_jobs;
create policy "image_jobs: owners read their own jobs"
  on public.image_jobs for select
  to authenticated
  using ((select auth.uid()) = user_id);

-- Makes a function callable by the service only. Supabase grants EXECUTE to anon and
-- authenticated directly (default privileges), which a revoke from PUBLIC alone does not undo.
create or replace function public.image_jobs_service_only(p_function text)
returns void
language plpgsql
as $$
begin
  execute format('revoke execute on function %s from public', p_function);
  if exists (select 1 from pg_roles where rolname = 'anon') then
    execute format('revoke execute on function %s from anon', p_function);
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute format('revoke execute on function %s from authenticated', p_function);
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    execute format('grant execute on function %s to service_role', p_function);
  end if;
end;
$$;

-- State-changing functions are for the service only.
select public.image_jobs_service_only(f) from unnest(array[
  'public.image_jobs_claim(uuid, text, integer, boolean)',
  'public.image_jobs_claim_due(text, integer, integer)',
  'public.image_jobs_transition(uuid, text, text[], jsonb)',
  'public.image_jobs_active_counts()',
  'public.image_jobs_list(uuid, integer, timestamptz, uuid)',
  'public.image_jobs_guard()',
  'public.image_jobs_service_only(text)'
]) as f;
