-- Provider slots counted atomically. A queued job that a worker has just claimed (leased) is about
-- to be submitted, so it already occupies a slot; and claims are serialised with a transaction-level
-- advisory lock, so two sweepers running at once cannot both hand out the same free slots.

create or replace function public.image_jobs_active_counts()
returns table (model text, active bigint)
language sql
stable
as $$
  select model, count(*) from public.image_jobs
   where (status in ('submitting', 'running') and provider_status is distinct from 'Ready')
      or (status = 'queued' and lease_until > now())
   group by model;
$$;

create or replace function public.image_jobs_claim_due(
  p_owner text,
  p_limit integer,
  p_lease_seconds integer,
  p_max_queued integer default null
)
returns setof public.image_jobs
language plpgsql
as $$
declare
  free_slots integer;
begin
  perform pg_advisory_xact_lock(hashtext('public.image_jobs_claim_due'));
  select greatest(0, 24 - coalesce(sum(active), 0))::integer into free_slots
    from public.image_jobs_active_counts();
  if p_max_queued is not null then
    free_slots := least(free_slots, p_max_queued);
  end if;
  return query
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
     where (not p.is_queued or p.queued_so_far <= free_slots)
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
end;
$$;

-- Queued jobs nobody is about to submit. A new job is submitted during its create request only
-- when this is zero; otherwise it waits its turn in the sweeper's fair order.
create or replace function public.image_jobs_queue_depth()
returns bigint
language sql
stable
as $$
  select count(*) from public.image_jobs
   where status = 'queued' and (lease_until is null or lease_until < now());
$$;

revoke execute on function public.image_jobs_queue_depth() from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke execute on function public.image_jobs_queue_depth() from anon;
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    revoke execute on function public.image_jobs_queue_depth() from authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function public.image_jobs_queue_depth() to service_role;
  end if;
end;
$$;
