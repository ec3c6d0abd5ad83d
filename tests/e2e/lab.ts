/**
 * What a dashboard end-to-end test starts: the real lab app (API + built dashboard) on a fresh embedded
 * PGlite data directory, served on a free port, and headless Chromium with a fresh profile. The same
 * start-up as tests/dashboard.test.ts, without its worker (pages that only read need none).
 */
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { openDb } from "../../db/client.ts";
import { createApp } from "../../server/api/app.ts";
import { EventBus } from "../../server/jobs/bus.ts";
import { createServerApp } from "../../server/main.ts";
import { buildDashboard } from "../../web/build.ts";

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
export const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
export const requireAll = Deno.env.get("REQUIRE_ALL") === "1";
export const ARTIFACTS = Deno.env.get("TEST_ARTIFACTS") ?? "/tmp/lab-screenshots";

/**
 * A test in headless Chromium: skipped where Chromium is missing, a failure naming the package when
 * REQUIRE_ALL=1 (CI). `sanitize: false` for tests whose servers and browser outlive single awaits.
 */
export function chromiumTest(name: string, fn: () => Promise<void>, opts: { sanitize?: boolean } = {}): void {
  Deno.test({
    name,
    ignore: !haveChromium && !requireAll,
    sanitizeOps: opts.sanitize ?? true,
    sanitizeResources: opts.sanitize ?? true,
    fn: async () => {
      assert.ok(haveChromium, `REQUIRE_ALL=1 but no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
      await fn();
    },
  });
}

export async function startLab(token: string) {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-e2e-" });
  const opened = await openDb({ dataDir });
  const bus = new EventBus();
  const app = await createServerApp(createApp({ db: opened.db, dataDir, token, bus, dbKind: opened.kind }));
  const abort = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: abort.signal, onListen() {} },
    app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const stop = async () => {
    abort.abort();
    await server.finished;
    await opened.close();
    await Deno.remove(dataDir, { recursive: true });
  };
  return { db: opened.db, dataDir, base, stop };
}

/** Headless Chromium with a fresh profile per run (playwright passes it as --user-data-dir). */
export async function launchChromium(userDataDir: string) {
  return await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    viewport: { width: 1440, height: 900 },
    acceptDownloads: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export type Lab = Awaited<ReturnType<typeof startLab>>;

/**
 * A dashboard test in headless Chromium (a chromiumTest): the dashboard built, a lab on a fresh data
 * directory, a fresh browser profile and one page. `fn` drives the page, which must then have thrown no
 * uncaught exception and, unless `consoleErrors` is false, logged no console error. The browser, the lab
 * and their directories go afterwards, pass or fail. `init` runs in each page before its own scripts.
 */
export function dashboardTest(
  name: string,
  token: string,
  fn: (page: Page, lab: Lab) => Promise<void>,
  opts: { consoleErrors?: boolean; init?: () => void } = {},
): void {
  chromiumTest(name, async () => {
    await buildDashboard({ quiet: true });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const lab = await startLab(token);
    const userDataDir = await Deno.makeTempDir({ prefix: "lab-chromium-" });
    const context = await launchChromium(userDataDir);
    try {
      if (opts.init) await context.addInitScript(opts.init);
      const page = context.pages()[0] ?? await context.newPage();
      const errors: string[] = [];
      if (opts.consoleErrors ?? true) {
        page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
      }
      page.on("pageerror", (err) => errors.push(err.message));
      await fn(page, lab);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await lab.stop();
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  }, { sanitize: false });
}
