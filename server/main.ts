/**
 * `deno task start [--port N] [--host H] [--workers N] [--no-worker]`: the lab server. Opens the database
 * (embedded PGlite in LAB_DATA_DIR, default ./data, or DATABASE_URL), runs one worker on its own thread, or
 * N with --workers (N jobs at once: a sweep's cells two at a time on a 2-core machine; README), or none with
 * --no-worker (API and dashboard only, the jobs left to `lab worker` processes on DATABASE_URL), serves the
 * API under /api and the dashboard from web/dist (index.html for client-side routes), which it builds first
 * when missing or stale. On first start it prints a sign-in link that carries the new token. Flags win over
 * the environment. One worker on the embedded database is the only one that could take a sweep's cell
 * jobs, so it runs each sweep in the sweep job, two lanes at a time (sweep-pool.ts), instead of fanning out.
 */
import { parseFlags, UsageError } from "./contract/command-flags.ts";
import { Hono } from "hono";
import { serveStatic } from "hono/deno";
import { openDb } from "../db/client.ts";
import { postgresArtifactStore } from "../db/artifacts.ts";
import { DbOwnedError } from "../db/owner.ts";
import { createApp } from "./api/app.ts";
import { ALLOWED_HOSTS_ENV, exposureWarning } from "./api/security.ts";
import { resolveToken } from "./api/token.ts";
import { EventBus } from "./jobs/bus.ts";
import { useArtifactStore } from "./lab/artifact-store.ts";
import { SWEEP_CONCURRENCY } from "./lab/sweep-pool.ts";
import "./jobs/handlers.ts";
import { startJobWatcher } from "./jobs/watch.ts";
import { startWorkerThread, STOP_WAIT_MS } from "./jobs/worker-thread.ts";
import { buildDashboard } from "../web/build.ts";

const WEB_DIST = new URL("../web/dist/", import.meta.url).pathname;

const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">` +
  `<rect width="16" height="16" rx="3" fill="#20252b"/><path d="M3 12 L7 6 L10 9 L13 3" stroke="#4fc3f7" ` +
  `stroke-width="2" fill="none"/></svg>`;

const NOT_BUILT_HTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lab</title></head>
<body style="font:15px system-ui;max-width:640px;margin:40px auto">
<h1>Weak-to-strong lab</h1><p>The dashboard is not built yet (web/dist is missing).</p>
<p>The API is up: see the <a href="/api/docs">interactive API reference</a> or
<a href="/api/openapi.json">openapi.json</a>.</p></body></html>`;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The dashboard address that signs the browser in: it keeps `#token=` in localStorage and removes it from
 * the address bar. A fragment never reaches the server, so the token stays out of request logs.
 */
export function signInLink(hostname: string, port: number, token: string): string {
  // A wildcard bind is reachable on loopback; a browser cannot open 0.0.0.0 everywhere.
  const shown = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  const host = shown.includes(":") ? `[${shown}]` : shown;
  return `http://${host}:${port}/#token=${encodeURIComponent(token)}`;
}

/** The API plus the dashboard's static files (or a placeholder page when it is not built). */
export async function createServerApp(api: Hono): Promise<Hono> {
  const app = new Hono();
  app.route("/", api);
  const built = await exists(`${WEB_DIST}index.html`);
  app.get("/favicon.ico", async (c) => {
    if (await exists(`${WEB_DIST}favicon.ico`)) {
      return c.body(await Deno.readFile(`${WEB_DIST}favicon.ico`), 200, { "Content-Type": "image/x-icon" });
    }
    return c.body(FAVICON_SVG, 200, { "Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400" });
  });
  if (built) {
    app.use("*", serveStatic({ root: WEB_DIST }));
    const index = await Deno.readTextFile(`${WEB_DIST}index.html`);
    app.get("*", (c) => c.html(index));
  } else {
    app.get("*", (c) => c.html(NOT_BUILT_HTML));
  }
  return app;
}

const USAGE = "usage: deno task start [--port N] [--host H] [--data-dir DIR] [--workers N] [--no-worker] " +
  "(env: PORT, LAB_DATA_DIR, " +
  "DATABASE_URL, LAB_TOKEN, " +
  `${ALLOWED_HOSTS_ENV}: extra names the Host header may carry, comma-separated, e.g. a TLS proxy's)`;

const START_FLAGS = {
  port: { type: "string" },
  host: { type: "string" },
  "data-dir": { type: "string" },
  workers: { type: "string" },
  "no-worker": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Worker threads one server may run: each holds a GPU device and a job's models. */
const MAX_WORKERS = 8;

/** The server's settings from its flags and the environment, or a UsageError naming the fix. */
export function startOptions(args: string[]) {
  const { values } = parseFlags(args, START_FLAGS);
  const rawPort = values.port ?? Deno.env.get("PORT") ?? "8787";
  const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!(port <= 65535)) {
    throw new UsageError(`--port must be a whole number 0–65535 (0: any free port), got "${rawPort}"`);
  }
  const worker = !values["no-worker"];
  if (!worker && !(Deno.env.get("DATABASE_URL") || undefined)) {
    throw new UsageError(
      "--no-worker needs DATABASE_URL: only this process reaches the embedded database, so without its " +
        "worker no job would ever run; set DATABASE_URL and start `deno task lab worker` processes",
    );
  }
  if (!worker && values.workers !== undefined) {
    throw new UsageError("--workers and --no-worker contradict each other: give one");
  }
  const workers = worker ? Number(values.workers ?? "1") : 0;
  if (worker && !(Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS)) {
    throw new UsageError(
      `--workers must be a whole number 1–${MAX_WORKERS} (jobs run at once), got "${values.workers}"`,
    );
  }
  return {
    help: values.help ?? false,
    worker,
    workers,
    port,
    hostname: values.host ?? "127.0.0.1",
    dataDir: values["data-dir"] ?? Deno.env.get("LAB_DATA_DIR") ?? "./data",
  };
}

/** What happens to the jobs running at shutdown, and how long the wait for them can be. */
function requeueNote(jobs: number[]): string {
  const [which, go, them] = jobs.length === 1
    ? [`job ${jobs[0]}`, "goes", "it"]
    : [`jobs ${jobs.join(", ")}`, "go", "them"];
  return `${which} ${go} back to the queue and run${go === "goes" ? "s" : ""} again on the next start ` +
    `(waiting up to ${STOP_WAIT_MS / 1000} s for ${them} to stop)`;
}

/** Fails fast on a taken port, before the database is opened or the dashboard built. */
function checkPortFree(hostname: string, port: number): void {
  if (port === 0) return;
  try {
    Deno.listen({ hostname, port }).close();
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    throw new UsageError(
      `port ${port} on ${hostname} is in use (another lab server?): stop it, or pick another with --port N`,
    );
  }
}

async function main() {
  const { help, port, hostname, dataDir, workers: workerCount } = startOptions(Deno.args);
  if (help) {
    console.log(USAGE);
    return;
  }
  const databaseUrl = Deno.env.get("DATABASE_URL") || undefined;
  const exposed = exposureWarning(hostname);
  if (exposed) console.error(exposed);
  checkPortFree(hostname, port);
  await Deno.mkdir(dataDir, { recursive: true });

  const opened = await openDb({ dataDir, databaseUrl, serves: true });
  // The ladder listing pulls what workers on other machines pretrained (embedded PGlite: one machine, none).
  if (opened.kind === "postgres") useArtifactStore(postgresArtifactStore(opened.db));
  const { token, generated } = await resolveToken(dataDir);
  const bus = new EventBus();
  // Extra worker processes on the same database reach the event stream through the database.
  const watcher = await startJobWatcher({ db: opened.db, bus });
  // Training runs on threads of its own, so the API answers while a job trains; each thread runs one job.
  // No other worker can lease a sweep's cells from one thread on the embedded database: it runs them in lanes.
  const lanes = opened.kind === "pglite" && workerCount === 1 ? SWEEP_CONCURRENCY : 1;
  const workers = Array.from(
    { length: workerCount },
    () => startWorkerThread({ opened, dataDir, databaseUrl, bus, lanes }),
  );
  const api = createApp({ db: opened.db, dataDir, token, bus, dbKind: opened.kind, host: hostname });
  // A failed build still leaves the API up (the placeholder page links to its docs).
  await buildDashboard().catch((err) => console.error(`dashboard not built: ${err.message}`));
  const app = await createServerApp(api);

  const abort = new AbortController();
  const server = Deno.serve({
    port,
    hostname,
    signal: abort.signal,
    onListen: ({ hostname, port }) => {
      console.log(
        `lab server on http://${hostname}:${port}/ (API docs: /api/docs; database: ${opened.kind})`,
      );
      if (generated) {
        console.log(`API token (stored in ${dataDir}/token, shown once): ${token}`);
        console.log(`sign in to the dashboard: ${signInLink(hostname, port, token)}`);
      }
    },
  }, app.fetch);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // A job mid-step may take seconds to stop: say what happens to it and how long the wait can be.
    const running = workers.map((w) => w.currentJobId()).filter((id) => id !== undefined);
    console.log(`${signal}: shutting down${running.length === 0 ? "" : `; ${requeueNote(running)}`}`);
    abort.abort();
    // Open event streams keep the server busy; do not wait on them for long.
    await Promise.race([server.finished, new Promise((r) => setTimeout(r, 2000))]);
    await Promise.all(workers.map((w) => w.stop()));
    await watcher.stop();
    await opened.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void shutdown("SIGTERM"));
}

if (import.meta.main) {
  await main().catch((err) => {
    // Bad flags, a taken port or a database another process owns: one line that names the fix.
    const expected = err instanceof UsageError || err instanceof DbOwnedError;
    console.error(`lab server: ${err instanceof Error ? err.message : String(err)}`);
    if (!expected) console.error(err);
    Deno.exit(expected ? 2 : 1);
  });
}
