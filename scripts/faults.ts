/**
 * Crashes mid-job, counted: `deno run -A scripts/faults.ts [--rounds 5] [--json]`. Starts its own server
 * (embedded PGlite in a temporary data dir, removed afterwards) and toy-train jobs; each round waits until
 * the running job has trained a few steps, `kill -9`s the server, starts it again on the same data dir and
 * waits for the job to resume (its lease expires first: about 30 s a round). A job survives at most
 * maxAttempts − 1 kills, so the rounds are spread over as many jobs as that takes. At the end it reads,
 * through the API, that every job is done, its attempts are its kills + 1, and its loss and accuracy series
 * hold every step exactly once. Prints rounds survived, rows expected and rows found; exits 1 on any loss.
 */
import { parseFlags, UsageError } from "../server/contract/command-flags.ts";
import { freePort, scriptHelp, spawnLabServer, waitForHealth } from "./load.ts";

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
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return console.log(await scriptHelp(import.meta.url));
  const rounds = Number(values.rounds ?? 5);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    throw new UsageError(`--rounds must be a whole number 1–50, got "${values.rounds}"`);
  }
  const dataDir = await Deno.makeTempDir({ prefix: "lab-faults-" });
  const port = freePort();
  const token = crypto.randomUUID();
  const base = `http://127.0.0.1:${port}`;
  let server = spawnLabServer(dataDir, port, token);
  const api: Api = async (path, init) => {
    const res = await fetch(base + path, init);
    const body = await res.json();
    if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  try {
    await waitForHealth(base, 60_000);
    const enqueue = (): Promise<JobRow> =>
      api("/api/jobs", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ type: "toy-train", params: TOY }),
      });
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
