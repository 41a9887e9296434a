-- Jobs by model and status, for /images/metrics (a gauge read at scrape time).
create or replace function public.image_jobs_status_counts()
returns table (model text, status text, jobs bigint)
language sql
stable
as $$
  select model, status, count(*) from public.image_jobs group by model, status;
$$;

revoke execute on function public.image_jobs_status_counts() from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke execute on function public.image_jobs_status_counts() from anon;
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    revoke execute on function public.image_jobs_status_counts() from authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function public.image_jobs_status_counts() to service_role;
  end if;
end;
$$;
