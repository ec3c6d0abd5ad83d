/**
 * `deno task lab demo [--seeds 0,1] [--concurrency N] [--json]`: the first thing to run. Pretrains the CPU
 * ladder's four smallest sizes (nano, micro, mini, small) on the lab's world, two at a time — cached, so a
 * second run only sweeps — then runs every world task over every pair with full finetuning (naive students; the
 * aux-confidence loss at the largest gap) and prints the median PGR over the suite with its 95 %
 * interval, the pairs per task whose gap is real, aux-confidence beside naive at the largest gap, and the
 * total time.
 * Two seeds by default (`--seeds 0` halves the sweep; its cells then carry each experiment's bootstrap
 * interval instead of a t-interval over seeds).
 * Progress with ETA on stderr. --concurrency N: groups of the sweep's experiments at once, each in a
 * worker (as `lab sweep`; default 2, 1: one after another).
 * --json: the last line is one JSON object.
 */
import { parseFlags } from "../../server/contract/command-flags.ts";
import { ProgressBar } from "../progress.ts";
import { DEMO_SWEEP, type DemoResult, runDemo } from "../../server/lab/demo.ts";
import { concurrencyOption, formatSweep, labDeps } from "./sweep.ts";
import { seedsOption } from "./w2s.ts";

const num = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    seeds: { type: "string" },
    concurrency: { type: "string" },
    json: { type: "boolean", default: false },
  });
  const seeds = values.seeds === undefined ? DEMO_SWEEP.seeds : seedsOption("seeds", values.seeds);
  const concurrency = concurrencyOption(values.concurrency);
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  let bar: ProgressBar | undefined;
  let phase = "";
  const result = await runDemo({
    ...await labDeps(dataDir, { concurrency }),
    dataDir,
    onProgress: (p) => {
      const label = p.phase === "pretrain" ? p.stage : "sweep";
      if (label !== phase) {
        bar?.finish();
        bar = new ProgressBar({ label, total: p.total, unit: p.unit });
        phase = label;
      }
      bar!.opts.total = p.total;
      // The pretraining bar's label already names its sizes.
      bar!.update(p.step, p.phase === "pretrain" ? "" : p.stage);
    },
  }, { ...DEMO_SWEEP, seeds });
  bar?.finish();
  if (values.json) {
    const cells = result.sweep.cells.map(({ ...c }) => c);
    console.log(JSON.stringify({ ...result, sweep: { cells, medians: result.sweep.medians } }));
    return;
  }
  console.log(formatSweep(result.sweep));
  console.log("");
  console.log(formatHeadline(result));
}

export function formatHeadline(r: DemoResult): string {
  const h = r.headline;
  const lines: string[] = [];
  const median = (m: typeof h.naive) =>
    m
      ? `${num(m.median_pgr)} [${num(m.median_ci.lo)}, ${num(m.median_ci.hi)}] over ${m.cells} cell${
        m.cells === 1 ? "" : "s"
      }` +
        (m.skipped ? ` (${m.skipped} gap too small)` : "")
      : "no cell";
  lines.push(`weak-to-strong, full finetuning, final checkpoint, median PGR over the world's tasks:`);
  lines.push(`  naive   ${median(h.naive)}`);
  lines.push(
    `  auxconf ${median(h.auxconf)} (largest gap only: ${h.largestGap.weak}→${h.largestGap.strong})`,
  );
  lines.push(
    `at the largest gap (${h.largestGap.weak}→${h.largestGap.strong}), PGR per task, naive vs auxconf:`,
  );
  for (const n of h.largestGap.naive) {
    const a = h.largestGap.auxconf.find((c) => c.task === n.task);
    const show = (c: typeof n | undefined) => (!c ? "-" : c.gap_too_small ? "gap too small" : num(c.pgr));
    lines.push(`  ${n.task.padEnd(20)} naive ${show(n).padEnd(14)} auxconf ${show(a)}`);
  }
  lines.push(
    `pairs whose gap is real, per task: ${
      Object.entries(h.realPairs).map(([t, n]) => `${t} ${n}`).join(", ")
    }`,
  );
  const verdict = (ok: boolean) => (ok ? "yes" : "NO");
  lines.push(
    `naive median PGR interval above 0: ${verdict(h.checks.naiveAboveZero)}; ` +
      `at least 3 real pairs per task: ${verdict(h.checks.threeRealPairsPerTask)}`,
  );
  const cached = r.cachedSizes.length ? ` (already pretrained: ${r.cachedSizes.join(", ")})` : "";
  lines.push(
    `total ${r.seconds.total.toFixed(0)} s: pretraining ${r.seconds.pretrain.toFixed(0)} s${cached}, ` +
      `sweep ${r.seconds.sweep.toFixed(0)} s`,
  );
  return lines.join("\n");
}
