-- Lets apps follow their jobs live with Supabase Realtime (Postgres Changes on image_jobs).
-- Realtime applies the table's RLS, so a user only hears about their own jobs. Skipped where
-- the supabase_realtime publication does not exist (PGlite, plain Postgres).
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime')
     and not exists (
       select 1 from pg_publication_tables
        where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'image_jobs'
     ) then
    execute 'alter publication supabase_realtime add table public.image_jobs';
  end if;
end;
$$;
