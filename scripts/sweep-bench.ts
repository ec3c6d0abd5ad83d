/**
 * `deno task bench --sweep`: the time of one sweep run one lane at a time and in two lanes (runInLanes,
 * server/lab/sweep.ts), each on an empty role cache of its own, on the ladder pretrained in $LAB_DATA_DIR
 * (or ./data), in the same run; and whether both gave the same readings. The sweep: every world task over
 * nano, micro and mini, naive students and the aux-confidence loss at the largest gap, seed 0 (32
 * experiments, about a minute and a half on 2 cores).
 */
import { join } from "node:path";
import { ExperimentCache } from "../server/lab/cache.ts";
import { ladderModelSource } from "../server/lab/model-source.ts";
import { sizesNotPretrained } from "../server/lab/model-store.ts";
import { runSweep, type SweepOptions, type SweepResult } from "../server/lab/sweep.ts";
import { SWEEP_CONCURRENCY, workerLanes } from "../server/lab/sweep-pool.ts";

export const BENCH_SWEEP: SweepOptions = {
  tasks: ["world"],
  sizes: ["nano", "micro", "mini"],
  methods: ["naive", "auxconf"],
  auxconfAt: "largest-gap",
  seeds: [0],
};

export interface SweepBenchReport {
  dataDir: string;
  experiments: number;
  /** Lanes → seconds of the whole sweep. */
  seconds: Record<number, number>;
  /** One lane's time over two lanes'. */
  speedup: number;
  /** Every cell's readings (accuracies, PGR, agreement) the same in both runs. */
  sameReadings: boolean;
}

/** A sweep's cells without what differs between two runs of it (timings). */
function readings(result: SweepResult): string {
  return JSON.stringify(result.cells.map(({ results, ...cell }) => ({
    ...cell,
    results: results.map((r) => ({ ...r, seconds: 0, runs: r.runs.map((run) => ({ ...run, seconds: 0 })) })),
  })));
}

/** Runs the bench sweep with one lane, then with SWEEP_CONCURRENCY lanes; `log` hears each as it ends. */
export async function benchSweep(dataDir: string, log: (line: string) => void): Promise<SweepBenchReport> {
  const missing = await sizesNotPretrained(dataDir, BENCH_SWEEP.sizes);
  if (missing.length > 0) {
    throw new Error(
      `--sweep needs ${BENCH_SWEEP.sizes.join(", ")} pretrained in ${dataDir} (missing: ${
        missing.join(", ")
      }); ` +
        `run: deno task lab pretrain --size ${
          missing.join(",")
        } (or set LAB_DATA_DIR to a lab's data directory)`,
    );
  }
  const scratch = await Deno.makeTempDir({ prefix: "bench-sweep-" });
  try {
    const seconds: Record<number, number> = {};
    const runs: SweepResult[] = [];
    for (const lanes of [1, SWEEP_CONCURRENCY]) {
      const cacheDir = join(scratch, `lanes-${lanes}`);
      const started = performance.now();
      runs.push(
        await runSweep(BENCH_SWEEP, {
          models: ladderModelSource(dataDir),
          cache: new ExperimentCache(cacheDir),
          lanes: lanes > 1 ? workerLanes({ dataDir, cacheDir }, { concurrency: lanes }) : undefined,
        }),
      );
      seconds[lanes] = (performance.now() - started) / 1000;
      log(
        `sweep of ${runs[0].experiments} experiments, ${lanes} lane${lanes > 1 ? "s" : ""}: ${
          seconds[lanes].toFixed(1)
        } s`,
      );
    }
    return {
      dataDir,
      experiments: runs[0].experiments,
      seconds,
      speedup: seconds[1] / seconds[SWEEP_CONCURRENCY],
      sameReadings: readings(runs[0]) === readings(runs[1]),
    };
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}
