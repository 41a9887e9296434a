-- Provider slots counted atomically: a queued job that a worker has just claimed (leased) is about
-- to be submitted, so it already occupies a slot (image_jobs_claim_due relies on this).

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

-- Queued jobs nobody is about to submit. A new job is submitted during its create request only
-- when no other job is waiting; otherwise it waits its turn in the sweeper's fair order.
create or replace function public.image_jobs_queue_depth()
returns bigint
language sql
stable
as $$
  select count(*) from public.image_jobs
   where status = 'queued' and (lease_until is null or lease_until < now());
$$;

-- Only the service calls these.
select public.image_jobs_service_only(f) from unnest(array[
  'public.image_jobs_active_counts()',
  'public.image_jobs_queue_depth()'
]) as f;
