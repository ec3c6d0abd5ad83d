/**
 * Crashes mid-job, counted: `deno run -A scripts/faults.ts [--rounds 5] [--json]`. Starts its own server
 * (embedded PGlite in a temporary data dir, removed afterwards) and toy-train jobs; each round waits until
 * the running job has trained a few steps, `kill -9`s the server, starts it again on the same data dir and
 * waits for the job to resume (its lease expires first: about 30 s a round). A job survives at most
 * maxAttempts − 1 kills, so the rounds are spread over as many jobs as that takes. At the end it reads,
 * through the API, that every job is done, its attempts are its kills + 1, and its loss and accuracy series
 * hold every step exactly once. Prints rounds survived, rows expected and rows found; exits 1 on any loss.
 *
 * --postgres: database outages instead (needs the postgresql package). The server runs on a throwaway
 * Postgres cluster; while a job trains, the cluster is stopped (connections drop at once) for
 * --short-outage seconds (default 3: the job's writes retry and it must end done with every row), then
 * on a second job for --long-outage seconds (default 15, longer than the retries: /api/health must answer
 * 503 meanwhile; the job fails, or, when even its failure cannot be written, its lease runs out and it
 * resumes by itself; a failed one is resumed with POST /api/jobs/:id/retry) — it must end done with every
 * row, never done with a gap.
 */
import { parseFlags, UsageError } from "../server/contract/command-flags.ts";
import { freePort, scriptHelp, spawnLabServer, waitForHealth } from "./load.ts";
import { findPostgresBin, startPgCluster } from "./pg-cluster.ts";

/** Steps each attempt trains before it is killed: more than a save interval, so resuming repeats steps. */
const STEPS_BEFORE_KILL = 25;
/** Steps of each job: far more than its kills can use up, so it is mid-training at every kill. */
const TOY = { steps: 400, stepDelayMs: 20, saveEvery: 10 };
const SERIES = ["loss", "accuracy"];
/** A restart, a 30 s lease running out and the resumed steps, with room for a slow machine. */
const ROUND_MS = 180_000;

/** What a metric series of `total` steps lacks: steps never written, and rows beyond one per step. */
export function seriesGaps(steps: number[], rows: number, total: number) {
  const seen = new Set(steps);
  const missing: number[] = [];
  for (let s = 0; s < total; s++) if (!seen.has(s)) missing.push(s);
  const stray = steps.filter((s) => !(Number.isInteger(s) && s >= 0 && s < total));
  return { missing, stray, duplicated: rows - seen.size };
}

interface JobRow {
  id: number;
  status: string;
  attempts: number;
  maxAttempts: number;
  progress?: { step?: number };
}

/** A JSON read (or write) of the API that throws on an error answer. */
type Api = <T = JobRow>(path: string, init?: RequestInit) => Promise<T>;

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
}

async function main() {
  const { values } = parseFlags(Deno.args, {
    rounds: { type: "string" },
    postgres: { type: "boolean", default: false },
    "short-outage": { type: "string" },
    "long-outage": { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return console.log(await scriptHelp(import.meta.url));
  const rounds = Number(values.rounds ?? 5);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    throw new UsageError(`--rounds must be a whole number 1–50, got "${values.rounds}"`);
  }
  if (values.postgres) {
    const seconds = (name: "short-outage" | "long-outage", fallback: number) => {
      const n = Number(values[name] ?? fallback);
      if (!(n > 0 && n <= 120)) {
        throw new UsageError(`--${name} must be seconds in (0, 120], got "${values[name]}"`);
      }
      return n;
    };
    return await outages(seconds("short-outage", 3), seconds("long-outage", 15), values.json);
  }
  const dataDir = await Deno.makeTempDir({ prefix: "lab-faults-" });
  const port = freePort();
  const token = crypto.randomUUID();
  const base = `http://127.0.0.1:${port}`;
  let server = spawnLabServer(dataDir, port, token);
  const { api, enqueue } = labApi(base, token);
  try {
    await waitForHealth(base, 60_000);
    const first = await enqueue();
    const killsPerJob = first.maxAttempts - 1;
    if (killsPerJob < 1) throw new Error(`jobs get ${first.maxAttempts} attempt: no kill can be survived`);
    const jobs = [first];
    const kills = new Map<number, number>([[first.id, 0]]);
    // The step each job's current attempt started from, by attempt.
    const attemptStart = new Map<string, number>();
    let survived = 0;
    for (let round = 1; round <= rounds; round++) {
      // The next job only once the last has had its kills: queued earlier, it would run while one resumes.
      if (kills.get(jobs.at(-1)!.id)! >= killsPerJob) {
        jobs.push(await enqueue());
        kills.set(jobs.at(-1)!.id, 0);
      }
      const victim = await until(`a job to kill (round ${round})`, ROUND_MS, async () => {
        const running = await api<JobRow[]>("/api/jobs?status=running&limit=10");
        for (const job of running) {
          const key = `${job.id}:${job.attempts}`;
          const step = job.progress?.step ?? 0;
          if ((kills.get(job.id) ?? killsPerJob) >= killsPerJob) continue;
          if (!attemptStart.has(key)) attemptStart.set(key, step);
          if (step >= attemptStart.get(key)! + STEPS_BEFORE_KILL) return job;
        }
      });
      server.kill("SIGKILL");
      await server.status;
      kills.set(victim.id, kills.get(victim.id)! + 1);
      server = spawnLabServer(dataDir, port, token);
      await waitForHealth(base, 60_000);
      // Resumed: a later attempt of the same job is running again (or already done).
      const resumed = await until(`job ${victim.id} to resume (round ${round})`, ROUND_MS, async () => {
        const job = await api(`/api/jobs/${victim.id}`);
        return job.status === "failed" || job.attempts > victim.attempts && job.status !== "queued"
          ? job
          : undefined;
      });
      if (resumed.status === "failed") throw new Error(`job ${victim.id} failed after round ${round}`);
      survived++;
      console.log(
        `round ${round}: killed the server at job ${victim.id} step ${victim.progress?.step}, resumed`,
      );
    }
    const report = await checkJobs(api, jobs, kills);
    const rowsExpected = report.reduce((n, j) => n + j.rowsExpected, 0);
    const rowsFound = report.reduce((n, j) => n + j.rowsFound, 0);
    const lost = report.filter((j) => j.problems.length > 0);
    console.log(
      `rounds survived ${survived}/${rounds}; jobs ${jobs.length}; rows expected ${rowsExpected}, found ${rowsFound}`,
    );
    for (const j of lost) console.log(`job ${j.id}: ${j.problems.join("; ")}`);
    if (values.json) console.log(JSON.stringify({ rounds, survived, rowsExpected, rowsFound, jobs: report }));
    return lost.length > 0 || survived < rounds ? 1 : 0;
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* already gone */ }
    await server.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

/** The API of the server at `base`: JSON reads and writes that throw on an error answer, and a toy job. */
function labApi(base: string, token: string) {
  const api: Api = async (path, init) => {
    const res = await fetch(base + path, init);
    const body = await res.json();
    if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const post = (path: string, body?: unknown): Promise<JobRow> =>
    api(path, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
  const enqueue = () => post("/api/jobs", { type: "toy-train", params: TOY });
  return { api, post, enqueue };
}

/** Polls /api/health while `during` runs: whether it ever answered 503 database_down. */
async function watchHealth(base: string, during: Promise<void>): Promise<boolean> {
  let down = false;
  let over = false;
  const done = during.finally(() => (over = true));
  while (!over) {
    const res = await fetch(`${base}/api/health`).catch(() => undefined);
    const body = await res?.json().catch(() => undefined);
    if (res?.status === 503 && body?.error?.code === "database_down") down = true;
    await new Promise((r) => setTimeout(r, 250));
  }
  await done;
  return down;
}

/** The --postgres mode (see the header): a short and a long outage of the server's Postgres mid-job. */
async function outages(shortSeconds: number, longSeconds: number, json: boolean): Promise<number> {
  const bin = findPostgresBin();
  if (!bin) throw new UsageError("--postgres needs Postgres binaries: apt-get install -y postgresql");
  const cluster = await startPgCluster(bin, freePort());
  const dataDir = await Deno.makeTempDir({ prefix: "lab-faults-pg-" });
  const port = freePort();
  const token = crypto.randomUUID();
  const base = `http://127.0.0.1:${port}`;
  const server = spawnLabServer(dataDir, port, token, cluster.url);
  const { api, post, enqueue } = labApi(base, token);
  const outage = async (seconds: number) => {
    await cluster.stop();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await cluster.start();
  };
  const trainedSome = (id: number) =>
    until(`job ${id} to train`, ROUND_MS, async () => {
      const job = await api(`/api/jobs/${id}`);
      return (job.progress?.step ?? 0) >= STEPS_BEFORE_KILL ? job : undefined;
    });
  const ended = (id: number) =>
    until(`job ${id} to end`, ROUND_MS, async () => {
      const job = await api(`/api/jobs/${id}`);
      return ["done", "failed", "cancelled"].includes(job.status) ? job : undefined;
    });
  try {
    await waitForHealth(base, 60_000);
    const short = await enqueue();
    await trainedSome(short.id);
    const shortHealthDown = await watchHealth(base, outage(shortSeconds));
    const shortEnd = await ended(short.id);
    console.log(`short outage (${shortSeconds} s): job ${short.id} ended ${shortEnd.status}`);

    const long = await enqueue();
    await trainedSome(long.id);
    const longHealthDown = await watchHealth(base, outage(longSeconds));
    const longEnd = await ended(long.id);
    // The job fails once its writes have retried for good; when even that outcome could not be written (the
    // database still down), its lease runs out and it resumes by itself. Either way: never done with a gap.
    const resumedBy = longEnd.status === "failed" ? "retry" : "lease expiry";
    if (longEnd.status === "failed") await post(`/api/jobs/${long.id}/retry`);
    const longFinal = await until(`job ${long.id} to be done`, ROUND_MS, async () => {
      const job = await api(`/api/jobs/${long.id}`);
      return job.status === "done" || job.status === "failed" && resumedBy === "lease expiry"
        ? job
        : undefined;
    });
    console.log(
      `long outage (${longSeconds} s): job ${long.id} ended ${longEnd.status}, resumed by ${resumedBy}, ` +
        `then ${longFinal.status}; /api/health 503 meanwhile: ${longHealthDown}`,
    );

    // A lease that ran out counts one attempt, as a kill does; a retry starts the attempts over.
    const lost = new Map([[short.id, 0], [long.id, resumedBy === "lease expiry" ? 1 : 0]]);
    const report = await checkJobs(api, [short, long], lost);
    const rowsExpected = report.reduce((n, j) => n + j.rowsExpected, 0);
    const rowsFound = report.reduce((n, j) => n + j.rowsFound, 0);
    const problems = report.flatMap((j) => j.problems.map((p) => `job ${j.id}: ${p}`));
    if (shortEnd.status !== "done") {
      problems.push(`the short outage ended job ${short.id} ${shortEnd.status}`);
    }
    if (!longHealthDown) problems.push("/api/health never answered 503 during the long outage");
    console.log(
      `outages survived ${
        problems.length === 0 ? 2 : "?"
      }/2; rows expected ${rowsExpected}, found ${rowsFound}`,
    );
    for (const p of problems) console.log(p);
    if (json) {
      console.log(
        JSON.stringify({
          shortSeconds,
          longSeconds,
          shortHealthDown,
          longHealthDown,
          rowsExpected,
          rowsFound,
          problems,
        }),
      );
    }
    return problems.length > 0 ? 1 : 0;
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* already gone */ }
    await server.status;
    await cluster.destroy();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

/** Waits for every job to end, then reads each one's row and series back through the API. */
async function checkJobs(
  api: Api,
  jobs: JobRow[],
  kills: Map<number, number>,
) {
  const report = [];
  for (const { id } of jobs) {
    const job: JobRow = await until(`job ${id} to end`, ROUND_MS, async () => {
      const row = await api(`/api/jobs/${id}`);
      return ["done", "failed", "cancelled"].includes(row.status) ? row : undefined;
    });
    const total = TOY.steps;
    const problems: string[] = [];
    if (job.status !== "done") problems.push(`ended ${job.status}`);
    if (job.attempts !== kills.get(id)! + 1) {
      problems.push(`attempts ${job.attempts}, kills ${kills.get(id)}`);
    }
    const [run] = await api<{ id: number }[]>(`/api/runs?jobId=${id}`);
    const { series } = await api<{ series: Record<string, { points: { step: number }[]; rows: number }> }>(
      `/api/runs/${run.id}/metrics?maxPoints=100000&names=${SERIES.join(",")}`,
    );
    let rowsFound = 0;
    for (const name of SERIES) {
      const s = series[name] ?? { points: [], rows: 0 };
      rowsFound += s.rows;
      const gaps = seriesGaps(s.points.map((p) => p.step), s.rows, total);
      if (gaps.missing.length) problems.push(`${name}: ${gaps.missing.length} steps missing`);
      if (gaps.duplicated) problems.push(`${name}: ${gaps.duplicated} duplicate rows`);
      if (gaps.stray.length) problems.push(`${name}: steps out of range ${gaps.stray.slice(0, 5)}`);
    }
    report.push({
      id,
      kills: kills.get(id),
      attempts: job.attempts,
      rowsExpected: total * SERIES.length,
      rowsFound,
      problems,
    });
  }
  return report;
}

if (import.meta.main) {
  const code = await main().catch((err) => {
    if (!(err instanceof UsageError)) throw err;
    console.error(`faults: ${err.message}`);
    return 2;
  });
  Deno.exit(code ?? 0);
}
