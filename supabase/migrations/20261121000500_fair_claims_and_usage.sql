-- Provider slots are scarce (BFL: 24 active tasks, 6 for kontext-max), so the sweeper must hand
-- them out fairly: one user's 500 queued jobs must not starve another user's one.
--
-- image_jobs_claim_due now claims in-flight jobs first (polls hold no new slot), then queued jobs
-- round-robin across users (each user's oldest first), and only as many queued jobs as there are
-- free slots (optionally fewer: p_max_queued), so jobs that cannot be submitted are not claimed.
-- Claims are serialised with a transaction-level advisory lock, so two sweepers running at once
-- cannot both hand out the same free slots (see image_jobs_active_counts in the 0800 migration).

drop function if exists public.image_jobs_claim_due(text, integer, integer);

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

-- Only the service calls these.
select public.image_jobs_service_only(f) from unnest(array[
  'public.image_jobs_claim_due(text, integer, integer, integer)',
  'public.image_jobs_user_usage(uuid)'
]) as f;
