-- Provider slots are scarce (BFL: 24 active tasks, 6 for kontext-max), so the sweeper must hand
-- them out fairly: one user's 500 queued jobs must not starve another user's one.
--
-- image_jobs_claim_due now claims in-flight jobs first (polls hold no new slot), then queued jobs
-- round-robin across users (each user's oldest first), and at most p_max_queued queued jobs —
-- the caller passes the free slots, so jobs that cannot be submitted are not claimed at all.

drop function if exists public.image_jobs_claim_due(text, integer, integer);

create or replace function public.image_jobs_claim_due(
  p_owner text,
  p_limit integer,
  p_lease_seconds integer,
  p_max_queued integer default null
)
returns setof public.image_jobs
language sql
as $$
  with due as (
    select id, user_id, status, next_check_at, created_at
      from public.image_jobs
     where status in ('queued', 'submitting', 'running')
       and next_check_at <= now()
       and (lease_until is null or lease_until < now())
  ),
  ranked as (
    select id,
           status = 'queued' as is_queued,
           row_number() over (partition by user_id, status = 'queued' order by created_at, id) as user_rank,
           next_check_at
      from due
  ),
  picked as (
    select id, is_queued, user_rank, next_check_at,
           sum(case when is_queued then 1 else 0 end)
             over (order by is_queued, user_rank, next_check_at, id) as queued_so_far
      from ranked
  ),
  chosen as (
    select j.id
      from public.image_jobs j
      join picked p on p.id = j.id
     where (not p.is_queued or p_max_queued is null or p.queued_so_far <= p_max_queued)
       -- re-checked under the row lock: another sweeper may have taken it meanwhile
       and j.status in ('queued', 'submitting', 'running')
       and j.next_check_at <= now()
       and (j.lease_until is null or j.lease_until < now())
     order by p.is_queued, p.user_rank, p.next_check_at, p.id
     limit p_limit
       for update of j skip locked
  )
  update public.image_jobs j
     set lease_owner = p_owner,
         lease_until = now() + make_interval(secs => p_lease_seconds)
    from chosen
   where j.id = chosen.id
  returning j.*;
$$;

-- What a user has in flight and has created in the last 24 hours, for the per-user limits.
create or replace function public.image_jobs_user_usage(p_user_id uuid)
returns table (active bigint, last_day bigint, oldest_in_day timestamptz)
language sql
stable
as $$
  select count(*) filter (where status in ('queued', 'submitting', 'running')),
         count(*) filter (where created_at > now() - interval '24 hours'),
         min(created_at) filter (where created_at > now() - interval '24 hours')
    from public.image_jobs
   where user_id = p_user_id;
$$;

-- Only the service calls these (see the first migration for why anon/authenticated are explicit).
revoke execute on function public.image_jobs_claim_due(text, integer, integer, integer) from public;
revoke execute on function public.image_jobs_user_usage(uuid) from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke execute on function public.image_jobs_claim_due(text, integer, integer, integer) from anon;
    revoke execute on function public.image_jobs_user_usage(uuid) from anon;
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    revoke execute on function public.image_jobs_claim_due(text, integer, integer, integer) from authenticated;
    revoke execute on function public.image_jobs_user_usage(uuid) from authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function public.image_jobs_claim_due(text, integer, integer, integer) to service_role;
    grant execute on function public.image_jobs_user_usage(uuid) to service_role;
  end if;
end;
$$;

-- The user index already serves usage counts; created_at lookups for idempotency use
-- image_jobs_idempotency_idx (user_id, idempotency_key).
