-- The private bucket for input copies and finished images. Only the service (secret key) writes;
-- owners may read their own objects (paths are <kind>/<user id>/...); clients normally download
-- through signed URLs, which need no policy at all.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('images', 'images', false, 26214400, array['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

drop policy if exists "images: owners read their own objects" on storage.objects;
create policy "images: owners read their own objects"
  on storage.objects for select
  to authenticated
  using (bucket_id = 'images' and (storage.foldername(name))[2] = (select auth.uid()::text));
