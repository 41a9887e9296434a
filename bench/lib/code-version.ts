/**
 * The commit a benchmark or soak measured, and whether the service's own code (shared/,
 * functions/, scripts/, supabase/, the Deno config) had uncommitted changes, for its report.
 *
 * @module
 */
const ROOT = new URL("../../", import.meta.url).pathname;

export async function codeVersion(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" })
      .output().catch(() => undefined);
    return out?.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  const head = await git("rev-parse", "--short", "HEAD");
  if (!head) return "unknown (not a git checkout)";
  const dirty = await git(
    "status",
    "--porcelain",
    "--",
    "shared",
    "functions",
    "scripts",
    "supabase",
    "import_map.json",
    "deno.json",
  );
  return dirty
    ? `${head} with uncommitted changes in ${
      [...new Set(dirty.split("\n").map((l) => l.slice(3).split("/")[0]))].join(", ")
    }`
    : head;
}
