-- Jobs by model and status, for /images/metrics (a gauge read at scrape time).
create or replace function public.image_jobs_status_counts()
returns table (model text, status text, jobs bigint)
language sql
stable
as $$
  select model, status, count(*) from public.image_jobs group by model, status;
$$;

-- Only the service calls these.
select public.image_jobs_service_only(f) from unnest(array[
  'public.image_jobs_status_counts()'
]) as f;
