-- Creating a job and, when it can go to BFL at once, claiming it for the submit — in one
-- statement. Job creation used to take five round trips before the provider call (insert, queue
-- depth, claim, active counts, transition to submitting); each costs 0.3–0.7 ms on PGlite and a
-- network round trip on Supabase.
--
-- With p_owner null the job is only inserted (queued). Otherwise, under the same advisory lock as
-- image_jobs_claim_due (so a sweeper cannot hand out the same slot meanwhile), the job is inserted
-- as 'submitting' and leased to p_owner only when nobody is waiting ahead of it (no unleased
-- queued job: fairness) and a provider slot is free (account and model caps, counted as
-- image_jobs_active_counts does); otherwise it is inserted queued, for the sweeper.
create or replace function public.image_jobs_create(
  p_job jsonb,
  p_owner text default null,
  p_lease_seconds integer default 60,
  p_account_max_active integer default 24,
  p_model_max_active integer default 24,
  p_webhook_secret text default null
)
returns setof public.image_jobs
language plpgsql
as $$
declare
  submit_now boolean := false;
  total_active bigint;
  model_active bigint;
begin
  if p_owner is not null then
    perform pg_advisory_xact_lock(hashtext('public.image_jobs_claim_due'));
    if not exists (
      select 1 from public.image_jobs
       where status = 'queued' and (lease_until is null or lease_until < now())
    ) then
      select coalesce(sum(active), 0), coalesce(sum(active) filter (where model = p_job->>'model'), 0)
        into total_active, model_active
        from public.image_jobs_active_counts();
      submit_now := total_active < p_account_max_active and model_active < p_model_max_active;
    end if;
  end if;
  return query
  insert into public.image_jobs (
    id, user_id, model, params, inputs, parent_job_id, idempotency_key, request_hash,
    status, submit_attempts, webhook_secret, lease_owner, lease_until
  ) values (
    (p_job->>'id')::uuid,
    (p_job->>'user_id')::uuid,
    p_job->>'model',
    p_job->'params',
    coalesce(p_job->'inputs', '[]'::jsonb),
    (p_job->>'parent_job_id')::uuid,
    p_job->>'idempotency_key',
    p_job->>'request_hash',
    case when submit_now then 'submitting' else 'queued' end,
    case when submit_now then 1 else 0 end,
    case when submit_now then p_webhook_secret end,
    case when submit_now then p_owner end,
    case when submit_now then now() + make_interval(secs => p_lease_seconds) end
  )
  returning *;
end;
$$;

-- Only the service calls it.
select public.image_jobs_service_only('public.image_jobs_create(jsonb, text, integer, integer, integer, text)');
