-- The chain of edits that led to a job (iterative editing): its ancestors through parent_job_id,
-- oldest first, ending with the job itself. Only the owner's jobs; depth-bounded.
create or replace function public.image_jobs_lineage(p_id uuid, p_user_id uuid)
returns setof public.image_jobs
language sql
stable
as $$
  with recursive chain (id, parent_job_id, depth) as (
    select id, parent_job_id, 0 from public.image_jobs where id = p_id and user_id = p_user_id
    union all
    select p.id, p.parent_job_id, c.depth + 1
      from public.image_jobs p
      join chain c on p.id = c.parent_job_id
     where p.user_id = p_user_id and c.depth < 1000
  )
  select j.* from public.image_jobs j join chain c on c.id = j.id order by c.depth desc;
$$;

-- Only the service calls these.
select public.image_jobs_service_only(f) from unnest(array[
  'public.image_jobs_lineage(uuid, uuid)'
]) as f;
