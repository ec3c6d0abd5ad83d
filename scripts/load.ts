/**
 * API latency under load: `deno run -A scripts/load.ts [--rate 200] [--seconds 10] [--job pretrain|toy|none]
 * [--url http://127.0.0.1:PORT] [--json]`. Sends concurrent GET requests to the lab's read endpoints at a
 * fixed arrival rate (open loop: a slow answer does not slow the senders) and prints latency p50 / p90 / p99
 * / max overall and per path.
 *
 * Without --url it starts its own server (`server/main.ts`, embedded PGlite in a temporary data dir) and, by
 * default, has it pretrain the `micro` size during the measurement (--job pretrain: the real training loop,
 * GPU submits, read-backs and metric writes; --job toy: a light CPU job; --job none: idle, for a baseline).
 * The server is stopped and the directory removed afterwards. Loopback only, at most 2,000 req/s for at most
 * 120 s. With --url the server is yours: start the job there yourself.
 */
import { parseFlags, UsageError } from "../server/contract/command-flags.ts";

const MAX_RATE = 2000;
const MAX_SECONDS = 120;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

export interface LatencySummary {
  requests: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function summarize(latencies: number[], errors: number): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

function positive(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(n > 0) || n > max) throw new UsageError(`--${name} must be a number in (0, ${max}], got "${raw}"`);
  return n;
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export async function waitForHealth(base: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/api/health`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server at ${base} did not answer /api/health within ${ms} ms`);
}

/** The job that trains while the load runs (scripts/load.ts --job). */
type LoadJob = "pretrain" | "toy" | "none";
const LOAD_JOBS: readonly LoadJob[] = ["pretrain", "toy", "none"];
/** The size the load's pretrain trains, and a budget that outlasts any measurement (it is cancelled). */
const LOAD_PRETRAIN = { size: "micro", body: { tokens: 50_000_000, force: true } };
/** The world and corpus are built before the first step: minutes at most on a slow machine. */
const JOB_START_MS = 300_000;

/** Starts the load's job on a server of ours; resolves once it reports progress. */
async function startJob(base: string, token: string, job: Exclude<LoadJob, "none">): Promise<number> {
  // Toy: ~50 steps/s, each evaluating 2,000 points and writing two metric rows.
  const [path, body] = job === "pretrain"
    ? [`/api/models/${LOAD_PRETRAIN.size}/pretrain`, LOAD_PRETRAIN.body]
    : ["/api/jobs", { type: "toy-train", params: { steps: 100_000, stepDelayMs: 20, samples: 2000 } }];
  const res = await fetch(base + path, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  const id = (answer.job ?? answer).id;
  if (res.status !== 201) throw new Error(`could not start the ${job} job: ${JSON.stringify(answer)}`);
  const deadline = Date.now() + JOB_START_MS;
  while (Date.now() < deadline) {
    const row = await (await fetch(`${base}/api/jobs/${id}`)).json();
    if (row.status === "running" && row.progress?.step > 0) return id;
    if (row.status === "failed") throw new Error(`the ${job} job failed: ${row.error}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the ${job} job made no progress within ${JOB_START_MS / 1000} s`);
}

/** `server/main.ts` on `port` with `token` as its API token: embedded PGlite in `dataDir`, or `databaseUrl`. */
export function spawnLabServer(
  dataDir: string,
  port: number,
  token: string,
  databaseUrl = "",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "server/main.ts", "--port", String(port), "--data-dir", dataDir],
    cwd: new URL("../", import.meta.url).pathname,
    env: { LAB_TOKEN: token, DATABASE_URL: databaseUrl },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** A script's `--help`: the opening doc comment of its file. */
export async function scriptHelp(url: string | URL): Promise<string> {
  const text = await Deno.readTextFile(new URL(url));
  return text.match(/^\/\*\*([\s\S]*?)\*\//)![1].replace(/^ \* ?/gm, "").trim();
}

/** A lab server of our own with the load's job running; `stop()` ends both and removes its data. */
async function startOwnServer(job: LoadJob) {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-load-" });
  const port = freePort();
  const token = crypto.randomUUID();
  const server = spawnLabServer(dataDir, port, token);
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      server.kill("SIGTERM");
    } catch { /* already gone */ }
    await server.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  };
  try {
    await waitForHealth(base, 30_000);
    if (job === "none") return { base, jobId: undefined, stop };
    const jobId = await startJob(base, token, job);
    const stopAll = async () => {
      await fetch(`${base}/api/jobs/${jobId}/cancel`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      }).then((r) => r.body?.cancel()).catch(() => {});
      await stop();
    };
    return { base, jobId: jobId as number | undefined, stop: stopAll };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function runLoad(opts: { base: string; rate: number; seconds: number; paths: string[] }) {
  const total = Math.round(opts.rate * opts.seconds);
  const intervalMs = 1000 / opts.rate;
  const byPath = new Map<string, { latencies: number[]; errors: number }>(
    opts.paths.map((p) => [p, { latencies: [], errors: 0 }]),
  );
  const all: number[] = [];
  let errors = 0;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    // Open loop: request i leaves at start + i·interval, whatever the earlier ones are doing.
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const path = opts.paths[i % opts.paths.length];
    const stats = byPath.get(path)!;
    const sent = performance.now();
    const request = fetch(opts.base + path).then(async (res) => {
      await res.arrayBuffer();
      const ms = performance.now() - sent;
      if (!res.ok) {
        errors++;
        stats.errors++;
        return;
      }
      all.push(ms);
      stats.latencies.push(ms);
    }).catch(() => {
      errors++;
      stats.errors++;
    });
    const tracked = request.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - start) / 1000;
  return {
    rate: opts.rate,
    seconds: opts.seconds,
    achievedRate: total / seconds,
    overall: summarize(all, errors),
    paths: Object.fromEntries([...byPath].map(([p, s]) => [p, summarize(s.latencies, s.errors)])),
  };
}

async function main() {
  const { values } = parseFlags(Deno.args, {
    url: { type: "string" },
    rate: { type: "string" },
    seconds: { type: "string" },
    json: { type: "boolean", default: false },
    job: { type: "string" },
    /** Comma-separated paths to read instead of the default mix ({run} stands for the job's run id). */
    paths: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(await scriptHelp(import.meta.url));
    return;
  }
  const rate = positive("rate", values.rate, 200, MAX_RATE);
  const seconds = positive("seconds", values.seconds, 10, MAX_SECONDS);
  const job = (values.job ?? "pretrain") as LoadJob;
  if (!LOAD_JOBS.includes(job)) {
    throw new UsageError(`--job must be one of ${LOAD_JOBS.join(", ")}, got "${values.job}"`);
  }
  if (values.url !== undefined && values.job !== undefined) {
    throw new UsageError("--job needs a server of our own: leave out --url, or start the job on yours");
  }
  let base = values.url?.replace(/\/+$/, "");
  if (base !== undefined && !(URL.canParse(base) && LOOPBACK.has(new URL(base).hostname))) {
    throw new UsageError(`--url must be a loopback address (127.0.0.1, localhost, [::1]), got ${base}`);
  }
  const own = base === undefined ? await startOwnServer(job) : undefined;
  base ??= own!.base;
  try {
    // A run to read metrics from: the job's own run when we started one, else any.
    const runsUrl = own?.jobId ? `/api/runs?jobId=${own.jobId}` : "/api/runs?limit=1";
    const runId = (await (await fetch(base + runsUrl)).json())[0]?.id;
    const chosen = values.paths?.split(",").map((p) => p.trim()).filter(Boolean);
    if (chosen?.some((p) => !p.startsWith("/api/"))) {
      throw new UsageError("--paths must all start with /api/");
    }
    const paths = chosen ? chosen.map((p) => p.replace("{run}", String(runId))) : [
      "/api/health",
      "/api/jobs?limit=20",
      "/api/experiments",
      "/api/tasks",
      "/api/models",
      "/api/results?limit=50",
      ...(runId ? [`/api/runs/${runId}/metrics?maxPoints=200`] : []),
    ];
    // Warm-up: the first request of a path loads code and caches (GET /api/models builds the tokenizer);
    // that one-time cost is shown apart, the measurement is of the steady state.
    const cold: Record<string, number> = {};
    for (const path of paths) {
      const sent = performance.now();
      await (await fetch(base + path)).arrayBuffer();
      cold[path] = performance.now() - sent;
    }
    const report = { ...await runLoad({ base, rate, seconds, paths }), coldMs: cold };
    const fmt = (s: LatencySummary) =>
      `${String(s.requests).padStart(6)} ${String(s.errors).padStart(6)} ${s.p50.toFixed(1).padStart(7)} ${
        s.p90.toFixed(1).padStart(7)
      } ${s.p99.toFixed(1).padStart(7)} ${s.max.toFixed(1).padStart(7)}`;
    console.log(
      `${rate} req/s for ${seconds} s against ${base}${
        own ? ` (own server, ${own.jobId ? `${job} job ${own.jobId} running` : "idle"})` : ""
      }; ` +
        `achieved ${report.achievedRate.toFixed(1)} req/s`,
    );
    console.log(`${"path".padEnd(40)}     ok errors  p50 ms  p90 ms  p99 ms  max ms  cold ms`);
    for (const [path, s] of Object.entries(report.paths)) {
      console.log(`${path.padEnd(40)} ${fmt(s)} ${cold[path].toFixed(1).padStart(8)}`);
    }
    console.log(`${"all".padEnd(40)} ${fmt(report.overall)}`);
    if (values.json) console.log(JSON.stringify(report));
  } finally {
    await own?.stop();
  }
}

if (import.meta.main) {
  await main().catch((err) => {
    if (!(err instanceof UsageError)) throw err;
    console.error(`load: ${err.message}`);
    Deno.exit(2);
  });
}
