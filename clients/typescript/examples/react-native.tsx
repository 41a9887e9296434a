/**
 * React Native example: pick a photo, create an edit job, follow it with polling, show the result.
 *
 * Not part of this repository's checks (it needs react, react-native and an image picker from
 * your app's node_modules). The client is the same file the web uses: React Native's FormData
 * takes `{ uri, name, type }` objects for files, which `createJob({ files })` passes through.
 *
 * Assumes `expo-image-picker` (any picker that yields a file URI works the same way) and
 * supabase-js with a signed-in session.
 */
import React, { useEffect, useRef, useState } from "react";
import { ActivityIndicator, Button, Image, Text, TextInput, View } from "react-native";
import * as ImagePicker from "expo-image-picker";
import { createClient } from "@supabase/supabase-js";
import { createImagesClient, ImagesApiError, type Job } from "../images-client.ts";

const SUPABASE_URL = "https://<project-ref>.supabase.co";
const supabase = createClient(SUPABASE_URL, "<publishable or anon key>");

const images = createImagesClient({
  baseUrl: `${SUPABASE_URL}/functions/v1/images`,
  getAccessToken: async () => (await supabase.auth.getSession()).data.session?.access_token,
});

export function EditPhotoScreen() {
  const [prompt, setPrompt] = useState("Make it look like a watercolor");
  const [photo, setPhoto] = useState<{ uri: string; name: string; type: string } | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);

  // Stop polling when the screen goes away.
  useEffect(() => () => abort.current?.abort(), []);

  async function pick() {
    const result = await ImagePicker.launchImageLibraryAsync({ mediaTypes: ["images"], quality: 0.9 });
    const asset = result.canceled ? undefined : result.assets[0];
    if (asset) {
      setPhoto({ uri: asset.uri, name: asset.fileName ?? "photo.jpg", type: asset.mimeType ?? "image/jpeg" });
    }
  }

  async function generate() {
    abort.current?.abort();
    abort.current = new AbortController();
    setBusy(true);
    setMessage(null);
    try {
      const accepted = await images.createJob({
        prompt,
        // Uploaded as multipart/form-data straight from the file URI: no base64 on the phone.
        files: photo ? { input_image: photo } : undefined,
      });
      setJob(accepted.job);
      const done = await images.waitForJob(accepted.id, {
        intervalMs: 1500,
        signal: abort.current.signal,
        onUpdate: setJob,
      });
      if (done.status !== "succeeded") setMessage(`${done.status}: ${done.error?.message ?? "no image"}`);
    } catch (error) {
      if ((error as Error).name === "AbortError") return;
      if (error instanceof ImagesApiError) {
        const fields = error.fieldErrors.map((d) => `${d.field}: ${d.message}`).join("\n");
        setMessage(fields ? `${error.message}\n${fields}` : error.message);
      } else {
        setMessage(String(error));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <View style={{ padding: 16, gap: 12 }}>
      <TextInput accessibilityLabel="Prompt" value={prompt} onChangeText={setPrompt} multiline />
      <Button title={photo ? `Photo: ${photo.name}` : "Choose a photo"} onPress={pick} />
      <Button title="Generate" onPress={generate} disabled={busy} />
      {busy && <ActivityIndicator />}
      {job && (
        <Text accessibilityLiveRegion="polite">
          {job.status}
          {job.provider.status ? ` (BFL: ${job.provider.status})` : ""}
        </Text>
      )}
      {message && <Text style={{ color: "crimson" }}>{message}</Text>}
      {job?.image && <Image source={{ uri: job.image.url }} style={{ width: "100%", aspectRatio: 1 }} />}
    </View>
  );
}
