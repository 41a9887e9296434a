// The playground (/images/playground) and the API reference (/images/docs) in a real headless
// Chromium (Debian's, driven by playwright-core) against the service over HTTP: upload, follow,
// gallery, "Edit this", errors in words, moderation, drag-and-drop, and every documented operation.
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.65.1";
import type { Browser, Page } from "npm:playwright-core@1.65.1";
import { decodeBase64 } from "../shared/images/base64.ts";
import { type Harness, startHarness } from "./support/harness.ts";
import { makePng, toBase64 } from "./support/test-images.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("./artifacts/", import.meta.url);
const TERMINAL = ["succeeded", "failed", "moderated"];
// Functions given to page.evaluate/waitForFunction run in the browser; Deno's types have no DOM.
// deno-lint-ignore no-explicit-any
type Dom = any;

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** The pages are part of the images app (a lost wiring fails here, not in a confusing click). */
function ensurePages(h: Harness): void {
  for (const path of ["/images/playground", "/images/docs"]) {
    assert.ok(h.server.app.routes.some((route) => route.path === path), `${path} is served by the app`);
  }
}

type JobJson = Record<string, unknown> & { id: string; status: string; error: { code: string; message: string } | null };

const getJob = async (h: Harness, id: string): Promise<JobJson> => await (await fetch(`${h.base}/jobs/${id}`)).json();

/** Clicks Generate and waits until the page shows a new job that has finished. */
async function submitAndWait(page: Page): Promise<{ id: string; status: string }> {
  const before = await page.getByTestId("job-id").textContent();
  await page.getByTestId("submit").click();
  await page.waitForFunction(
    ({ previous, terminal }) => {
      const document = (globalThis as Dom).document;
      const id = document.querySelector("[data-testid=job-id]")?.textContent;
      const status = document.querySelector("[data-testid=job-status]")?.dataset.status;
      return Boolean(id) && id !== previous && terminal.includes(status ?? "");
    },
    { previous: before, terminal: TERMINAL },
    { timeout: 20_000 },
  );
  return {
    id: (await page.getByTestId("job-id").textContent())!,
    status: (await page.getByTestId("job-status").getAttribute("data-status"))!,
  };
}

Deno.test({
  name: "playground and API reference in a real browser",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const h = await startHarness();
    ensurePages(h);
    const dir = await Deno.makeTempDir({ prefix: "playground-test-" });
    let browser: Browser | undefined;
    try {
      browser = await launch();
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.setDefaultTimeout(15_000);
      const pageErrors: string[] = [];
      const foreign: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(String(error)));
      page.on("request", (request) => {
        const url = request.url();
        if (!/^(data|blob):/.test(url) && new URL(url).hostname !== "127.0.0.1") foreign.push(url);
      });

      const upload = makePng(96, 64, 21);
      const uploadPath = `${dir}/input.png`;
      await Deno.writeFile(uploadPath, upload);
      let first = "";

      await t.step("upload a PNG, follow the job to succeeded, see it in the gallery", async () => {
        const response = await page.goto(`${h.base}/playground`);
        assert.equal(response?.status(), 200);
        assert.equal(response?.headers()["content-type"], "text/html; charset=utf-8");
        assert.equal(await page.getByTestId("api-base").textContent(), h.base);
        await page.getByLabel("Prompt", { exact: true }).fill("A watercolor fox in the snow");
        await page.getByTestId("file-input").setInputFiles(uploadPath);
        await page.getByTestId("file-item").first().waitFor();
        assert.match((await page.getByTestId("file-list").textContent())!, /input\.png → input_image/);
        const job = await submitAndWait(page);
        assert.equal(job.status, "succeeded");
        first = job.id;
        await page.locator("[data-testid=result-image]:visible").waitFor();
        const item = page.locator(`[data-testid=gallery-item][data-job-id="${first}"]`);
        await item.locator("[data-testid=gallery-image]").waitFor();
        await page.waitForFunction((id) => {
          const img = (globalThis as Dom).document.querySelector(`[data-job-id="${id}"] img`);
          return Boolean(img?.complete && img.naturalWidth > 0);
        }, first);
        const stored = await getJob(h, first);
        assert.deepEqual((stored.inputs as { kind: string }[]).map((i) => i.kind), ["upload"]);
        assert.deepEqual(decodeBase64(h.sim.submissions[0].body.input_image as string), upload, "the uploaded bytes reach BFL");
        assert.match((await page.getByTestId("provider-status").textContent())!, /BFL: Ready/);
      });

      await t.step('"Edit this" chains a new edit onto the first job', async () => {
        await page.locator(`[data-testid=gallery-item][data-job-id="${first}"] [data-testid=edit-job]`).click();
        await page.getByTestId("editing").waitFor();
        assert.equal(await page.getByTestId("editing-id").textContent(), first);
        assert.equal(await page.getByTestId("file-item").count(), 0, "a new edit starts from the job's image alone");
        await page.getByLabel("Prompt", { exact: true }).fill("Now at night, with a full moon");
        const edit = await submitAndWait(page);
        assert.equal(edit.status, "succeeded");
        const job = await getJob(h, edit.id);
        assert.equal(job.parent_job_id, first);
        assert.deepEqual(job.inputs, [{ slot: "input_image", kind: "job", job_id: first, content_type: "image/jpeg", bytes: ((await getJob(h, first)).image as { bytes: number }).bytes }]);
        const lineage = await (await fetch(`${h.base}/jobs/${edit.id}/lineage`)).json();
        assert.deepEqual(lineage.data.map((j: { id: string }) => j.id), [first, edit.id]);
        await page.locator(`[data-testid=gallery-item][data-job-id="${edit.id}"] [data-testid=gallery-image]`).waitFor();
        await page.getByTestId("clear-edit").click();
        await page.getByTestId("editing").waitFor({ state: "hidden" });
      });

      await t.step("an empty prompt shows the API's error message and field details", async () => {
        const expected = (await (await fetch(`${h.base}/jobs`, { method: "POST", body: (() => {
          const form = new FormData();
          form.set("prompt", "");
          return form;
        })() })).json()).error;
        await page.getByLabel("Prompt", { exact: true }).fill("");
        await page.getByTestId("submit").click();
        const error = page.getByTestId("error");
        await error.waitFor();
        assert.equal(await error.getByTestId("error-message").textContent(), expected.message);
        assert.deepEqual(
          await error.getByTestId("error-detail").allTextContents(),
          expected.details.map((d: { field: string; message: string }) => `${d.field}: ${d.message}`),
        );
        assert.match((await error.textContent())!, /invalid_request · HTTP 400/);
      });

      await t.step("a moderated job shows its moderation message", async () => {
        await page.getByLabel("Prompt", { exact: true }).fill("[sim:content-moderated] a cat on a skateboard");
        const job = await submitAndWait(page);
        assert.equal(job.status, "moderated");
        const api = await getJob(h, job.id);
        assert.equal(api.error?.code, "content_moderated");
        const shown = page.getByTestId("job-error");
        await shown.waitFor();
        assert.equal(await shown.getByTestId("error-message").textContent(), api.error!.message);
        assert.match((await shown.textContent())!, /content_moderated/);
        assert.ok(await page.getByTestId("error").isHidden(), "the form's last error is cleared by a successful submit");
      });

      await t.step("drag-and-drop a file; bagel shows steps/guidance and hides aspect ratio", async () => {
        await page.getByTestId("model").selectOption("flux-bagel-alpha");
        assert.ok(await page.getByTestId("steps").isVisible());
        assert.ok(await page.getByTestId("guidance").isVisible());
        assert.ok(await page.getByTestId("aspect-ratio").isHidden());
        const dropped = makePng(40, 40, 4);
        await page.getByTestId("file-input").setInputFiles(uploadPath);
        await page.getByTestId("dropzone").evaluate((zone: Dom, base64: string) => {
          const { DataTransfer, DragEvent, File } = globalThis as Dom;
          const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
          zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
        }, toBase64(dropped));
        const items = page.getByTestId("file-item");
        await items.nth(1).waitFor();
        assert.deepEqual(await items.allTextContents(), ["input.png → input_imageRemove", "dropped.png → input_image_2Remove"]);
        // Removing the picked file makes the dropped one input_image.
        await items.first().getByTestId("remove-file").click();
        assert.deepEqual(await items.allTextContents(), ["dropped.png → input_imageRemove"]);
        await page.getByLabel("Prompt", { exact: true }).fill("Make it a Lego scene");
        await page.getByTestId("steps").fill("20");
        const job = await submitAndWait(page);
        assert.equal(job.status, "succeeded");
        const submission = h.sim.submissions.at(-1)!;
        assert.equal(submission.model, "flux-bagel-alpha");
        assert.equal(submission.body.steps, 20);
        assert.deepEqual(decodeBase64(submission.body.input_image as string), dropped);
        await page.locator("[data-testid=result-image]:visible").waitFor();
        await page.getByTestId("model").selectOption("flux-kontext-pro");
        await Deno.mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: new URL("playground.png", ARTIFACTS).pathname, fullPage: true });
      });

      await t.step("the bearer token is kept and sent; a rejected token's message is shown", async () => {
        try {
          await page.locator("#auth summary").click();
          await page.getByTestId("token").fill("aaa.bbb.ccc");
          await page.getByLabel("Prompt", { exact: true }).fill("anything");
          await page.getByTestId("submit").click();
          const error = page.getByTestId("error");
          await error.waitFor();
          assert.equal(await error.getByTestId("error-message").textContent(), "The access token could not be verified");
          assert.match((await error.textContent())!, /invalid_token · HTTP 401/);
          await page.reload();
          assert.equal(await page.getByTestId("token").inputValue(), "aaa.bbb.ccc", "kept in localStorage");
        } finally {
          await page.evaluate(() => (globalThis as Dom).localStorage.clear());
        }
      });

      await t.step("network failures are shown in words; the page also works under /functions/v1", async () => {
        const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (closed.addr as Deno.NetAddr).port;
        closed.close();
        await page.goto(`${h.base}/playground?api=${encodeURIComponent(`http://127.0.0.1:${port}/images`)}`);
        const error = page.getByTestId("gallery-error");
        await error.waitFor();
        assert.match((await error.textContent())!, new RegExp(`Cannot list your jobs: Cannot reach the API at http://127\\.0\\.0\\.1:${port}/images/jobs`));

        const v1 = h.base.replace("/images", "/functions/v1/images");
        await page.goto(`${v1}/playground`);
        assert.equal(await page.getByTestId("api-base").textContent(), v1);
        await page.locator("[data-testid=gallery-item]").first().waitFor();
        const listed = (await (await fetch(`${v1}/jobs`)).json()).data.length;
        assert.equal(await page.locator("[data-testid=gallery-item]").count(), listed);
      });

      await t.step("the API reference lists every operation and Try it works", async () => {
        const doc = await (await fetch(`${h.base}/openapi.json`)).json();
        const response = await page.goto(`${h.base}/docs`);
        assert.equal(response?.status(), 200);
        await page.getByTestId("operation").first().waitFor();
        const expected: string[] = [];
        for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
          for (const method of Object.keys(item)) expected.push(`${method.toUpperCase()} ${path}`);
        }
        const listed = await page.getByTestId("operation").evaluateAll((nodes) =>
          nodes.map((node: Dom) => `${node.dataset.method} ${node.dataset.path}`)
        );
        assert.deepEqual(listed.sort(), expected.sort());
        assert.ok(expected.length >= 5);
        const create = page.locator('[data-testid=operation][data-method=POST][data-path="/images/jobs"]');
        assert.ok(await create.locator('[data-testid=field][data-field="prompt"]').count() === 1, "request body fields are listed");
        assert.ok(await create.locator('[data-testid=response][data-code="202"]').count() === 1);

        const health = page.locator('[data-testid=operation][data-method=GET][data-path="/images/health"]');
        await health.getByTestId("try-it").click();
        await health.getByTestId("try-send").click();
        await page.waitForFunction(() =>
          /^200 /.test((globalThis as Dom).document.querySelector('[data-path="/images/health"] [data-testid=try-status]')?.textContent ?? "")
        );
        assert.match((await health.getByTestId("try-response").textContent())!, /"status": "ok"/);

        // The prefilled example body of the create route is a valid request.
        await create.getByTestId("try-it").click();
        await create.getByTestId("try-send").click();
        await page.waitForFunction(() =>
          /^\d{3} /.test((globalThis as Dom).document.querySelector('[data-path="/images/jobs"][data-method=POST] [data-testid=try-status]')?.textContent ?? "")
        );
        assert.match((await create.getByTestId("try-status").textContent())!, /^202 /);
      });

      assert.deepEqual(pageErrors, [], "no script errors");
      assert.deepEqual(foreign, [], "the pages load nothing from other origins");
    } finally {
      await browser?.close().catch(() => {});
      await h.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
