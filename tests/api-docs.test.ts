/**
 * The API reference page (/api/docs, Swagger UI from the lab's own npm package) in headless Chromium against
 * the real lab app: it lists the document's operations, logs no console error, sends no request anywhere but
 * the lab, its files are cached for long by content hash, and Try it out sends the dashboard's token.
 * Without Chromium the browser test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { chromiumTest, launchChromium, startLab } from "./e2e/lab.ts";

const TOKEN = "docs-test-token";

Deno.test("the docs page's files come from the lab, cached by content hash", async () => {
  const lab = await startLab(TOKEN);
  try {
    const html = await (await fetch(`${lab.base}/api/docs`)).text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(urls.length, 3, html);
    for (const url of urls) {
      assert.match(url, /^\/api\/docs\/assets\/[\w.-]+\?v=[0-9a-f]{12}$/, "same-origin and versioned");
      const res = await fetch(lab.base + url);
      const body = await res.text();
      assert.equal(res.status, 200, url);
      assert.match(res.headers.get("cache-control")!, /max-age=31536000/, url);
      if (url.includes("bundle")) assert.match(body, /SwaggerUIBundle/, "the package's bundle itself");
    }
    assert.match(html, /data-openapi="\/api\/openapi\.json"/);
    const missing = await fetch(`${lab.base}/api/docs/assets/nope.js`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await lab.stop();
  }
});

chromiumTest(
  "the docs page lists the operations offline, and Try it out sends the signed-in token",
  async () => {
    const lab = await startLab(TOKEN);
    const profile = await Deno.makeTempDir({ prefix: "lab-docs-chromium-" });
    const browser = await launchChromium(profile);
    try {
      const page = await browser.newPage();
      const consoleErrors: string[] = [];
      const foreign: string[] = [];
      page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
      page.on("pageerror", (e) => consoleErrors.push(String(e)));
      page.on("request", (r) => {
        if (!r.url().startsWith(lab.base + "/") && !r.url().startsWith("data:")) foreign.push(r.url());
      });
      // As the dashboard's sign-in link leaves it.
      await page.addInitScript((token) => localStorage.setItem("lab.token", token), TOKEN);
      await page.goto(`${lab.base}/api/docs`);
      const experiments = page.locator("#operations-experiments-getExperiments .opblock-summary-path");
      await experiments.waitFor({ timeout: 20_000 });
      assert.equal((await experiments.getAttribute("data-path"))?.trim(), "/experiments");
      const operations = await page.locator(".opblock").count();
      assert.ok(operations >= 30, `${operations} operations listed`);

      await page.click("#operations-meta-getAuth .opblock-summary-control");
      await page.click("#operations-meta-getAuth .try-out__btn");
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.url().endsWith("/api/auth")),
        page.click("#operations-meta-getAuth .execute"),
      ]);
      assert.equal(request.headers()["authorization"], `Bearer ${TOKEN}`);
      const status = page.locator(
        "#operations-meta-getAuth .live-responses-table tr.response .response-col_status",
      );
      await status.first().waitFor();
      assert.equal((await status.first().textContent())?.trim(), "200");

      assert.deepEqual(foreign, [], "every request stays on the lab's origin");
      assert.deepEqual(consoleErrors, []);
    } finally {
      await browser.close();
      await Deno.remove(profile, { recursive: true });
      await lab.stop();
    }
  },
);
