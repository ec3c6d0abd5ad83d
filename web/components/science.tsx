/**
 * The paper's views of weak-to-strong results, shared by the experiment, sweep and results pages:
 * figure 3 (test accuracy vs strong size, one line per weak supervisor, weak and ceiling references),
 * PGR bars per pair and method, the median-PGR table, agreement (figure 8) and probe saliency (§5.2.3).
 */
import { METHOD_NAMES } from "../../server/contract/methods.ts";
import { alignSeries, Chart, type ChartWhisker } from "./chart.tsx";
import { EmptyState } from "./ui.tsx";
import { shareRange } from "../lib/chart-layout.ts";
import {
  formatInterval,
  formatNumber,
  formatParams,
  mean,
  methodColour,
  methodLine,
  PALETTE,
} from "../lib/format.ts";
import {
  accuracyInterval,
  agreementInterval,
  cautionLines,
  isNumber,
  medianIntervalText,
  methodLabel,
  onePerSeed,
  pgrBarGroups,
  probeWhiskers,
  tasksOf,
} from "../lib/result-groups.ts";
import { setQueryParam } from "../lib/router.ts";
import { isPairwiseRow, PAIRWISE_ACCURACY, taskLabel } from "../lib/task-format.ts";
import type { ProbeRow, ResultRow } from "../lib/types.ts";
import type { CellSummary, ResultsSummary } from "../../server/contract/results.ts";
import { SUITE_MEDIAN_DRAWS } from "../../server/contract/intervals.ts";
import { useResource } from "../lib/resource.ts";

export { tasksOf };

export type ParamsBySize = ReadonlyMap<string, number>;

/** Figure 3's reference lines; the weak sizes take PALETTE and the methods METHOD_COLOURS. */
const CEILING_COLOUR = "#111111";
const WEAK_COLOUR = "#8a939c";

const METHOD_ORDER: readonly string[] = METHOD_NAMES;

function byMethodOrder(a: string, b: string): number {
  const ia = METHOD_ORDER.indexOf(a), ib = METHOD_ORDER.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
}

function sizeOrder(params: ParamsBySize) {
  return (a: string, b: string) => (params.get(a) ?? 0) - (params.get(b) ?? 0) || a.localeCompare(b);
}

function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const list = groups.get(key);
    if (list) list.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

const finite = (values: (number | null | undefined)[]) =>
  values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));

export function methodsOf(rows: ResultRow[]): string[] {
  return [...new Set(rows.map((r) => r.method ?? "naive"))].sort(byMethodOrder);
}

/** Which task the page shows (?task= in the address); a pairwise task is marked. */
export function TaskPicker(
  { tasks, pairwise, current }: { tasks: string[]; pairwise: string[]; current: string },
) {
  return (
    <label>
      Task{" "}
      <select
        data-testid="task-picker"
        value={current}
        onChange={(e) => setQueryParam("task", (e.target as HTMLSelectElement).value)}
      >
        {tasks.map((t) => (
          <option key={t} value={t}>
            {taskLabel(t, pairwise.includes(t) ? "pairwise" : "classification")}
          </option>
        ))}
      </select>
    </label>
  );
}

/** What the accuracies and agreement of pairwise (preference) results mean, said once where they are shown. */
export function PairwiseNote({ rows }: { rows: ResultRow[] }) {
  const pairwise = tasksOf(rows.filter(isPairwiseRow));
  if (pairwise.length === 0) return null;
  const one = pairwise.length === 1;
  const which = pairwise.length === tasksOf(rows).length
    ? `These results are of ${one ? "a preference task" : "preference tasks"}`
    : `${pairwise.join(", ")} ${one ? "is a preference task" : "are preference tasks"}`;
  return (
    <p class="callout pairwise" role="note" data-testid="pairwise-note">
      <strong>{PAIRWISE_ACCURACY}.</strong>{" "}
      {which}: a reward head scores both texts of a pair and prefers the higher, so every accuracy here (weak,
      ceiling, student, the curves) counts pairs ranked correctly, chance 0.5; agreement is agreement on which
      member of a pair is preferred.
    </p>
  );
}

/** The chance rate the results were read against (the majority-class share of test); 0.5 when unknown. */
function chanceOf(rows: ResultRow[]): number {
  const rates = new Set(rows.map((r) => r.full?.chance?.rate).filter(isNumber));
  return rates.size === 1 ? [...rates][0] : 0.5;
}

/**
 * The colour of each weak size, on figure 3 and on PGR vs knowledge: PALETTE in order of size over every weak
 * size of `rows`, so a size keeps its colour whichever method is shown.
 */
function weakColours(rows: ResultRow[], params: ParamsBySize): (weak: string) => string {
  const all = [...new Set(rows.map((r) => r.weakSize).filter((w): w is string => !!w))].sort(
    sizeOrder(params),
  );
  return (weak) => PALETTE[Math.max(0, all.indexOf(weak)) % PALETTE.length];
}

/** Whiskers a few pixels apart when several series have a point at the same x. */
const whiskerOffset = (i: number) => (i % 2 === 0 ? 1 : -1) * 4 * (Math.floor(i / 2) + 1);

/**
 * Figure 3: for one task and method, each weak supervisor is a line that starts at its own accuracy (at the
 * weak size) and goes through the student accuracies at each strong size; the ceiling (strong trained on
 * ground truth) is the black line. Accuracies are means over seeds; each point carries the API's 95 %
 * interval of the same rows (a shaded band when it spans several seeds), and chance is the dashed red line.
 * Rows of several tasks are not drawn: a task's points and intervals are never pooled with another's.
 */
export function AccuracyVsSizePlot(
  { rows, params, method, useOracle = false, title, axis = "params", cells = [] }: {
    rows: ResultRow[];
    /** The x value per size: parameters, or pretraining compute when `axis` is "compute". */
    params: ParamsBySize;
    method: string;
    useOracle?: boolean;
    title?: string;
    axis?: "params" | "compute";
    /** The API's summary cells of these rows: the intervals over seeds. */
    cells?: CellSummary[];
  },
) {
  if (tasksOf(rows).length > 1) {
    return <EmptyState title="Figure 3 shows one task at a time: pick a task." />;
  }
  const chosen = rows.filter((r) => (r.method ?? "naive") === method && r.weakSize && r.strongSize);
  const known = chosen.filter((r) => params.has(r.weakSize!) && params.has(r.strongSize!));
  if (known.length === 0) {
    return <EmptyState title={`No ${method} results with known model sizes to plot.`} />;
  }
  const at = (size: string) => params.get(size)!;
  const whiskers: ChartWhisker[] = [];
  const addWhisker = (
    x: number,
    interval: ReturnType<typeof accuracyInterval>,
    color: string,
    dx: number,
  ) => {
    if (interval) whiskers.push({ x, lo: interval.lo, hi: interval.hi, color, band: interval.seeds > 1, dx });
  };
  const ceiling: Array<[number, number]> = [];
  // A strong size's ceiling (and a weak size's own accuracy) is one model per seed, whatever the pair.
  for (const [strong, all] of groupBy(known, (r) => r.strongSize!)) {
    const group = onePerSeed(all);
    const acc = mean(finite(group.map((r) => r.ceilingAcc)));
    if (acc === null) continue;
    ceiling.push([at(strong), acc]);
    addWhisker(at(strong), accuracyInterval(group, "ceiling_acc", cells), CEILING_COLOUR, 0);
  }
  const weakRefs: Array<[number, number]> = [];
  const lines: Array<{ weak: string; points: Array<[number, number]> }> = [];
  const colourOf = weakColours(rows, params);
  const weakSizes = [...new Set(known.map((r) => r.weakSize!))].sort(sizeOrder(params));
  weakSizes.forEach((weak, i) => {
    const group = known.filter((r) => r.weakSize === weak);
    const weakModels = onePerSeed(group);
    const weakAcc = mean(finite(weakModels.map((r) => r.weakAcc)));
    const points: Array<[number, number]> = [];
    if (weakAcc !== null) {
      points.push([at(weak), weakAcc]);
      weakRefs.push([at(weak), weakAcc]);
      addWhisker(at(weak), accuracyInterval(weakModels, "weak_acc", cells), WEAK_COLOUR, 0);
    }
    for (const [strong, pair] of groupBy(group, (r) => r.strongSize!)) {
      const acc = mean(
        finite(pair.map((r) => useOracle ? r.oracleStudentAcc ?? r.studentAcc : r.studentAcc)),
      );
      if (acc === null) continue;
      points.push([at(strong), acc]);
      // The oracle reading has no interval of its own.
      if (!useOracle) {
        const interval = accuracyInterval(pair, "student_acc", cells);
        addWhisker(at(strong), interval, colourOf(weak), whiskerOffset(i));
      }
    }
    lines.push({ weak, points: points.sort((a, b) => a[0] - b[0]) });
  });
  const data = alignSeries([ceiling, weakRefs, ...lines.map((l) => l.points)]);
  const accuracy = known.every(isPairwiseRow) ? "Pairwise test accuracy" : "Test accuracy";
  const series = [
    { label: "ceiling (strong on ground truth)", color: CEILING_COLOUR, width: 2.5 },
    { label: "weak models (on ground truth)", color: WEAK_COLOUR, dash: [6, 4] },
    ...lines.map((l) => ({ label: `student, weak = ${l.weak}`, color: colourOf(l.weak) })),
  ];
  const chance = chanceOf(known);
  // The whisker of a line's point, for the text summary: " [lo, hi]", or nothing.
  const intervalAt = (weak: string, x: number) => {
    const colour = x === at(weak) ? WEAK_COLOUR : colourOf(weak);
    const w = whiskers.find((w) => w.x === x && w.color === colour);
    return w ? ` ${formatInterval(w)}` : "";
  };
  const all = [...data.slice(1).flat(), ...whiskers.flatMap((w) => [w.lo, w.hi])]
    .filter((v): v is number => v !== null);
  const [lo, hi] = shareRange(all);
  const seedCounts = [...new Set(known.map((r) => r.seed))].length;
  const intervalText = whiskers.length === 0
    ? "No intervals recorded for these results."
    : `Bars: 95\u00a0% intervals${seedCounts > 1 ? ", shaded over seeds (t-interval)" : ""}${
      whiskers.some((w) => !w.band) ? "; plain bars over test examples (Wilson, one seed)" : ""
    }${useOracle ? "; the GT-early-stopped student has none" : ""}. Red dashed line: chance ${
      chance.toFixed(2)
    }. Readings at the final checkpoint${useOracle ? " (student: best test point)" : ""}.`;
  return (
    <>
      <Chart
        testId="fig3"
        title={title ??
          `${accuracy} vs strong-model ${axis === "compute" ? "pretraining compute" : "size"} (${method}${
            useOracle ? ", GT early stopping" : ""
          })`}
        xLabel={axis === "compute" ? "strong-model pretraining FLOP (log)" : "strong-model parameters (log)"}
        yLabel={accuracy.toLowerCase()}
        logX
        yRange={[Math.min(lo, chance - 0.05), hi]}
        chance={chance}
        data={data}
        series={series}
        whiskers={whiskers}
        summary={lines.map((l) =>
          `weak ${l.weak}: ${
            l.points.map(([x, y]) => `${formatParams(x)} ${y.toFixed(3)}${intervalAt(l.weak, x)}`).join(", ")
          }`
        ).join("; ")}
      />
      <p class="muted small" data-testid="fig3-intervals" data-whiskers={whiskers.length}>
        {intervalText}
        {/* Said here rather than on the axis, whose title would not fit a phone's width. */}
        {axis === "compute" && " x axis: pretraining compute, FLOP = 6 · params · tokens."}
      </p>
    </>
  );
}

/** The API's summary of a set of results (GET /api/results/summary): cells and medians, never recomputed here. */
export function useResultsSummary(query: string, cue: unknown) {
  return useResource<ResultsSummary>(`/results/summary${query}`, cue);
}

const pgrText = (v: number | null) => (v === null ? "—" : v.toFixed(2));

/**
 * A cell's PGR interval from the API: the t-interval over its seeds, or with one seed the result's paired
 * bootstrap over test examples (`full.ci.pgr`); null when neither is recorded.
 */
function pgrInterval(c: CellSummary, rows: ResultRow[]): { lo: number; hi: number } | null {
  if (isNumber(c.pgr_ci.lo) && isNumber(c.pgr_ci.hi)) return c.pgr_ci;
  if (c.seeds.length !== 1) return null;
  const row = rows.find((r) =>
    r.task === c.task && r.weakSize === c.weak && r.strongSize === c.strong && r.method === c.method &&
    r.seed === c.seeds[0]
  );
  const ci = row?.full?.ci?.pgr;
  return ci && isNumber(ci.lo) && isNumber(ci.hi) ? ci : null;
}

/**
 * PGR per (weak, strong) pair, one bar per method: the cell's PGR (of the seed-mean final accuracies)
 * with its 95 % interval as a whisker — the t-interval of its per-seed PGRs, or for a single seed the
 * result's bootstrap interval over test examples (from `rows`); cells whose gap is within noise say so
 * instead. Cells of several tasks are grouped per task and pair, each group naming its task. Drawn in HTML
 * so values stay legible.
 */
export function PgrBars(
  { summary, params, rows = [] }: { summary: ResultsSummary; params: ParamsBySize; rows?: ResultRow[] },
) {
  const order = sizeOrder(params);
  const cells = [...summary.cells].sort((a, b) =>
    (a.task < b.task ? -1 : a.task > b.task ? 1 : 0) || order(a.weak, b.weak) || order(a.strong, b.strong)
  );
  const methods = [...new Set(cells.map((c) => c.method))].sort(byMethodOrder);
  const shown = cells.filter((c) => !c.gap_too_small && c.pgr !== null && Number.isFinite(c.pgr));
  if (cells.length === 0) {
    return <EmptyState title="No PGR values yet (they appear when an experiment finishes)." />;
  }
  const intervalOf = (c: CellSummary) => pgrInterval(c, rows);
  const ends = shown.flatMap((c) => [c.pgr, intervalOf(c)?.lo, intervalOf(c)?.hi]).filter((v): v is number =>
    typeof v === "number" && Number.isFinite(v)
  );
  const lo = Math.min(0, ...ends), hi = Math.max(1, ...ends);
  const span = hi - lo;
  const x = (v: number) => ((v - lo) / span) * 100;
  return (
    <div class="bars" data-testid="pgr-bars">
      <div class="legend-row">
        {methods.map((m) => (
          <span key={m} class="legend-item">
            <span class="swatch" style={{ background: methodColour(m) }} />
            {m}
          </span>
        ))}
        <span class="muted small">
          PGR = (student − weak) / (ceiling − weak) at the final checkpoint; 1 = full recovery; whisker:
          95&nbsp;% interval, over seeds (t) where a pair has several, else over test examples (bootstrap)
        </span>
      </div>
      {pgrBarGroups(cells).map(({ key, label, cells: group }) => (
        <div class="bar-group" key={key}>
          <div class="bar-label">{label}</div>
          <div class="bar-stack">
            {group.sort((a, b) => byMethodOrder(a.method, b.method)).map((c) => {
              if (c.gap_too_small || c.pgr === null || !Number.isFinite(c.pgr)) {
                return (
                  <div class="bar-row" key={methodLabel(c)}>
                    <span class="bar-value muted">
                      {methodLabel(c)}: gap too small (ceiling − weak within noise)
                    </span>
                  </div>
                );
              }
              const v = c.pgr;
              const left = Math.min(x(0), x(v));
              const interval = intervalOf(c);
              return (
                <div
                  class="bar-row"
                  key={methodLabel(c)}
                  title={`${label} ${methodLabel(c)}: PGR ${v.toFixed(3)}`}
                >
                  <div class="bar-track">
                    <div class="bar-zero" style={{ left: `${x(0)}%` }} />
                    <div class="bar-one" style={{ left: `${x(1)}%` }} />
                    <div
                      class="bar"
                      style={{
                        left: `${left}%`,
                        width: `${Math.abs(x(v) - x(0))}%`,
                        background: methodColour(c.method),
                      }}
                    />
                    {interval && (
                      <div
                        class="bar-whisker"
                        style={{ left: `${x(interval.lo)}%`, width: `${x(interval.hi) - x(interval.lo)}%` }}
                      />
                    )}
                  </div>
                  <span class="bar-value">
                    {methodLabel(c)} {pgrText(v)}
                    {interval && (
                      <>
                        {" "}
                        <span class="nowrap">{formatInterval(interval)}</span>
                      </>
                    )} · <span class="nowrap">{c.seeds.length} seed{c.seeds.length === 1 ? "" : "s"}</span>
                  </span>
                </div>
              );
            })}
          </div>
        </div>
      ))}
      <PgrScale lo={lo} hi={hi} x={x} />
    </div>
  );
}

/**
 * The PGR bars' scale under the last bar: 0 (the solid line) and 1 (the dashed line), and the ends where they
 * lie far enough from both to be read apart.
 */
function PgrScale({ lo, hi, x }: { lo: number; hi: number; x: (v: number) => number }) {
  const ends = [lo, hi].filter((v) => Math.abs(x(v) - x(0)) > 12 && Math.abs(x(v) - x(1)) > 12);
  const ticks = [...new Set([0, 1, ...ends])].sort((a, b) => a - b);
  return (
    <div class="bar-group bar-scale" aria-hidden="true">
      <span class="bar-scale-name muted small">PGR</span>
      <div class="bar-row">
        <div class="bar-axis">
          {ticks.map((t) => {
            const at = x(t);
            // The end ticks stay inside the track: their text runs inwards from them.
            const shift = at < 4 ? "0" : at > 96 ? "-100%" : "-50%";
            return (
              <span key={t} class="bar-tick" style={{ left: `${at}%`, transform: `translateX(${shift})` }}>
                {Number.isInteger(t) ? t : t.toFixed(1)}
              </span>
            );
          })}
        </div>
        <span />
      </div>
    </div>
  );
}

/** The strong model's knowledge per strong reference ("medium@30"), from the results that record it. */
export function strongKnowledgeOf(rows: ResultRow[]): Map<string, number> {
  const knowledge = new Map<string, number>();
  for (const r of rows) {
    const k = r.full?.strongKnowledge;
    if (r.strongSize && typeof k === "number" && Number.isFinite(k)) knowledge.set(r.strongSize, k);
  }
  return knowledge;
}

/** uPlot columns for a scatter: every point's own x (repeats allowed), each series valued at its points. */
function scatterColumns(series: Array<Array<[number, number]>>): (number | null)[][] {
  const points = series.flatMap((list, s) => list.map(([x, y]) => ({ s, x, y }))).sort((a, b) => a.x - b.x);
  return [points.map((p) => p.x), ...series.map((_, s) => points.map((p) => (p.s === s ? p.y : null)))];
}

/**
 * PGR against how much the strong model knows (region recall of its checkpoint: a snapshot along
 * pretraining or the final model), from the summary of one task's results: one point per (weak, strong,
 * method) cell, the points of a weak model and method joined in order of recall. Colour is the weak model
 * (as on figure 3), the line's dash the method (METHOD_LINES), each legend entry names both; whiskers are
 * the cell's interval (t over seeds; one seed: the bootstrap over test examples), as on the PGR bars. The x axis spans the points' recall (shareRange), not
 * 0–1: the checkpoints compared usually all know most of the world (0.92–1 in the demo), and on 0–1 their
 * points and whiskers would pile up at its right edge. It is the only recall axis on the page, and the
 * same checkpoints give the same range on every task.
 */
export function PgrVsKnowledge(
  { task, summary, rows, params }: {
    task: string;
    summary: ResultsSummary;
    rows: ResultRow[];
    params: ParamsBySize;
  },
) {
  const knowledge = strongKnowledgeOf(rows);
  const recall = (c: CellSummary) => knowledge.get(c.strong)!;
  const cells = summary.cells.filter((c) => knowledge.has(c.strong) && !c.gap_too_small && isNumber(c.pgr));
  if (cells.length === 0) {
    return (
      <EmptyState title="Every pair with a recorded strong-model knowledge has a gap too small for PGR." />
    );
  }
  const order = sizeOrder(params);
  const groups = [...new Map(cells.map((c) => [`${c.weak} · ${c.method}`, c])).values()]
    .sort((a, b) => order(a.weak, b.weak) || byMethodOrder(a.method, b.method))
    .map(({ weak, method }) => ({
      weak,
      method,
      cells: cells.filter((c) => c.weak === weak && c.method === method),
    }));
  const colourOf = weakColours(rows, params);
  const whiskers: ChartWhisker[] = groups.flatMap((g, i) =>
    g.cells.filter((c) => isNumber(c.pgr_ci.lo) && isNumber(c.pgr_ci.hi) && c.pgr_ci.hi > c.pgr_ci.lo)
      .map((c) => ({
        x: recall(c),
        lo: c.pgr_ci.lo,
        hi: c.pgr_ci.hi,
        color: colourOf(g.weak),
        dx: whiskerOffset(i),
      }))
  );
  const ends = [...cells.map((c) => c.pgr), ...whiskers.flatMap((w) => [w.lo, w.hi])];
  const methodKey = [...new Set(groups.map((g) => g.method))].map((m) => `${m} ${methodLine(m).word}`)
    .join("; ");
  return (
    <>
      <Chart
        testId="pgr-vs-knowledge"
        title={`PGR vs strong model's knowledge — ${task}`}
        xLabel="strong model's region recall"
        yLabel="PGR"
        data={scatterColumns(groups.map((g) => g.cells.map((c) => [recall(c), c.pgr] as [number, number])))}
        series={groups.map((g) => ({
          label: `weak ${g.weak} · ${g.method}`,
          color: colourOf(g.weak),
          dash: methodLine(g.method).dash,
          open: methodLine(g.method).open,
          width: 1.5,
        }))}
        whiskers={whiskers}
        xRange={shareRange(cells.map(recall), 0.01)}
        yRange={[Math.min(0, ...ends) - 0.05, Math.max(1, ...ends) + 0.05]}
        summary={cells.map((c) =>
          `${c.weak}→${c.strong} (${c.method}): recall ${recall(c).toFixed(3)}, PGR ${c.pgr.toFixed(2)}`
        ).join("; ")}
      />
      <p class="muted small" data-testid="pgr-vs-knowledge-key">
        Colour: the weak model, as on figure 3. The method: {methodKey}.
      </p>
    </>
  );
}

/** The median PGR per task × method and per method over all tasks, as the API computed it. */
export function MedianPgrTable({ summary }: { summary: ResultsSummary }) {
  if (summary.medians.length === 0) return <EmptyState title="No results to summarize yet." />;
  return (
    <>
      <MedianTable summary={summary} />
      <p class="muted small" data-testid="median-interval-rule">
        95&nbsp;% interval: every cell's PGR drawn {SUITE_MEDIAN_DRAWS.toLocaleString("en")}{" "}
        times from its own interval (t over its seeds, or over test examples for one seed), the median of each
        draw; where the median of these tasks and pairs would land with new seeds.
      </p>
    </>
  );
}

function MedianTable({ summary }: { summary: ResultsSummary }) {
  return (
    <table class="table" data-testid="median-pgr">
      <caption class="visually-hidden">Median performance gap recovered per task and method</caption>
      <thead>
        <tr>
          <th scope="col">task</th>
          <th scope="col">method</th>
          <th scope="col" class="num">median PGR</th>
          <th scope="col" class="num">95&nbsp;% interval</th>
          <th scope="col" class="num">pairs used</th>
          <th scope="col" class="num">left out (gap too small)</th>
        </tr>
      </thead>
      <tbody>
        {summary.medians.map((m) => (
          <tr key={`${m.task ?? "*"}/${methodLabel(m)}`}>
            <td class="nowrap">{m.task ?? <em>all tasks</em>}</td>
            <td>{methodLabel(m)}</td>
            <td class="num strong">{formatNumber(m.median_pgr, 3)}</td>
            <td class="num">{medianIntervalText(m)}</td>
            <td class="num">{m.cells}</td>
            <td class="num">{m.skipped}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const at = (value: number | null, step: number | null | undefined) =>
  value === null ? "—" : `${formatNumber(value)}${step !== null && step !== undefined ? ` @${step}` : ""}`;

/** The training step a result read each model at (its final checkpoint), from the pipeline's result. */
const finalStep = (r: ResultRow, role: "weak" | "ceiling" | "student") => r.full?.final?.steps[role];

/** One small cell per interval under a result row ("—" where there is none). */
const intervalCells = (intervals: Array<{ lo: number; hi: number } | null | undefined>) =>
  intervals.map((interval, k) => <td key={k} class="num small muted">{formatInterval(interval) ?? "—"}</td>);

/**
 * Every result row: the numbers behind the plots. The headline columns are the final checkpoint's; the
 * student's validation-selected and ground-truth-oracle readings stand beside them with their steps. Under
 * a row with intervals, a second line gives each reading's 95 % interval. A row from a sweep links to the
 * sweep's page (`sweepIds`).
 */
export function ResultsTable(
  { rows, sweepIds = new Set() }: { rows: ResultRow[]; sweepIds?: ReadonlySet<number> },
) {
  const hasControl = rows.some((r) => r.full?.control);
  const headers = [
    "exp",
    "task",
    "weak",
    "strong",
    "method",
    "seed",
    "weak acc (final)",
    "ceiling (final)",
    "student (final)",
    "PGR (final)",
    "student selected (agreement with weak labels on val)",
    "student oracle (best test)",
    ...(hasControl ? ["random-init ceiling"] : []),
  ];
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="results-table">
        <caption class="small muted">
          Every reading names its checkpoint: final (the paper's reading, the headline) unless named.
          "selected" is the student at its best validation point, and a student's validation labels are the
          weak model's: it is the checkpoint that agrees with the supervisor most. The oracle picks on test
          and is an upper bound only, without an interval. @N: the training step. Under each row: 95&nbsp;%
          intervals (Wilson over test examples; PGR: paired bootstrap), and the selected student's where its
          result recorded one (older results did not).
        </caption>
        <thead>
          <tr>{headers.map((h) => <th scope="col" key={h}>{h}</th>)}</tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const ci = r.full?.ci;
            const href = sweepIds.has(r.experimentId)
              ? `/sweeps/${r.experimentId}`
              : `/experiments/${r.experimentId}`;
            return [
              <tr key={r.id} data-result-id={r.id}>
                <td class="nowrap">
                  <a href={href}>{sweepIds.has(r.experimentId) ? "sweep " : ""}#{r.experimentId}</a>
                </td>
                <td>
                  <span class="nowrap">{r.task}</span>{" "}
                  {isPairwiseRow(r) && <span class="tag" title={PAIRWISE_ACCURACY}>pairwise</span>}
                </td>
                <td>{r.weakSize}</td>
                <td>{r.strongSize}</td>
                <td>{r.method}</td>
                <td class="num">{r.seed ?? "—"}</td>
                <td class="num">{at(r.weakAcc, finalStep(r, "weak"))}</td>
                <td class="num">{at(r.ceilingAcc, finalStep(r, "ceiling"))}</td>
                <td class="num">{at(r.studentAcc, finalStep(r, "student"))}</td>
                <td class="num strong">
                  {r.gapTooSmall ? <span class="muted">gap too small</span> : formatNumber(r.pgr)}
                </td>
                <td class="num">{at(r.selectedStudentAcc, r.selectedStep)}</td>
                <td class="num">{at(r.oracleStudentAcc, r.oracleStep)}</td>
                {hasControl && (
                  <td class="num">{at(r.full?.control?.ceiling_acc ?? null, r.full?.control?.step)}</td>
                )}
              </tr>,
              ci && (
                <tr key={`${r.id}-ci`} class="interval-row" data-testid="interval-row">
                  <td colSpan={6} class="small muted">95&nbsp;% interval</td>
                  {intervalCells([
                    ci.weak_acc,
                    ci.ceiling_acc,
                    ci.student_acc,
                    ci.pgr,
                    r.full?.selected?.ci?.student_acc,
                  ])}
                  <td class="num small muted" title="chosen on test: an upper bound, without an interval">
                    —
                  </td>
                  {hasControl && (
                    <td class="num small muted">{formatInterval(r.full?.control?.ci) ?? "—"}</td>
                  )}
                </tr>
              ),
            ];
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The pipeline's plain-language cautions of these results (within noise of chance, gap too small). */
export function ResultWarnings({ rows }: { rows: ResultRow[] }) {
  const warnings = cautionLines(rows);
  if (warnings.length === 0) return null;
  const list = (lines: string[]) => <ul>{lines.map((w) => <li key={w}>{w}</li>)}</ul>;
  return (
    <div class="callout warning" role="note" data-testid="result-warnings">
      <strong>Read these results with care</strong>
      {list(warnings.slice(0, 8))}
      {warnings.length > 8 && (
        <details>
          <summary class="small">… and {warnings.length - 8} more</summary>
          {list(warnings.slice(8))}
        </details>
      )}
    </div>
  );
}

const AGREEMENT_PARTS = [
  // The keys the pipeline writes (server/lab/metrics.ts Agreement).
  { key: "all", label: "all examples" },
  { key: "supervisor_correct", label: "where the supervisor is right" },
  { key: "supervisor_wrong", label: "where the supervisor is wrong" },
] as const;

/**
 * Figure 8 of the paper: student–supervisor agreement vs student size, a chart per part (all test examples,
 * those the supervisor got right, those it got wrong) and method, a line per weak supervisor in figure 3's
 * colours. A point is the mean over seeds of one pair; its bar is the API's 95 % interval (shaded: t over
 * seeds; plain: Wilson over one seed's examples). One task at a time, as figure 3: pairs of different tasks
 * are never averaged into one point.
 */
export function AgreementCharts(
  { rows, params, cells = [] }: { rows: ResultRow[]; params: ParamsBySize; cells?: CellSummary[] },
) {
  if (tasksOf(rows).length > 1) {
    return <EmptyState title="Agreement shows one task at a time: pick a task." />;
  }
  const withAgreement = rows.filter((r) =>
    r.agreement && r.weakSize && r.strongSize && params.has(r.weakSize) && params.has(r.strongSize)
  );
  if (withAgreement.length === 0) {
    return <EmptyState title="No agreement figures in these results yet." />;
  }
  const colourOf = weakColours(rows, params);
  const weakSizes = [...new Set(withAgreement.map((r) => r.weakSize!))].sort(sizeOrder(params));
  const severalSeeds = new Set(withAgreement.map((r) => r.seed)).size > 1;
  return (
    <>
      <div class="chart-grid">
        {methodsOf(withAgreement).flatMap((method) => {
          const group = withAgreement.filter((r) => (r.method ?? "naive") === method);
          return AGREEMENT_PARTS.map((part) => (
            <AgreementChart
              key={`${method}/${part.key}`}
              method={method}
              part={part}
              rows={group}
              weakSizes={weakSizes}
              colourOf={colourOf}
              params={params}
              cells={cells}
            />
          ));
        })}
      </div>
      <p class="muted small" data-testid="agreement-intervals">
        A line per weak supervisor; x: the student's size. Bars: 95&nbsp;% intervals
        {severalSeeds && ", shaded over seeds (t-interval, cut at 0 and 1)"}
        {", plain over one seed's test examples of that part (Wilson)"}.
      </p>
    </>
  );
}

/** One part's agreement for one method's rows: a line per weak size through its pairs' seed means. */
function AgreementChart(
  { method, part, rows, weakSizes, colourOf, params, cells }: {
    method: string;
    part: typeof AGREEMENT_PARTS[number];
    rows: ResultRow[];
    weakSizes: string[];
    colourOf: (weak: string) => string;
    params: ParamsBySize;
    cells: CellSummary[];
  },
) {
  const whiskers: ChartWhisker[] = [];
  const lines = weakSizes.map((weak, i) => {
    const points: Array<{ x: number; y: number; ci: string }> = [];
    for (const [strong, pair] of groupBy(rows.filter((r) => r.weakSize === weak), (r) => r.strongSize!)) {
      const y = mean(finite(pair.map((r) => r.agreement?.[part.key])));
      if (y === null) continue;
      const x = params.get(strong)!;
      const interval = agreementInterval(pair, part.key, cells);
      if (interval) {
        whiskers.push({
          ...interval,
          x,
          color: colourOf(weak),
          band: interval.seeds > 1,
          dx: whiskerOffset(i),
        });
      }
      points.push({ x, y, ci: interval ? ` ${formatInterval(interval)}` : "" });
    }
    return { weak, points: points.sort((a, b) => a.x - b.x) };
  }).filter((l) => l.points.length > 0);
  return (
    <Chart
      testId={`agreement-${method}-${part.key}`}
      title={`Agreement ${part.label} — ${method}`}
      xLabel="student parameters (log)"
      yLabel="agreement"
      logX
      // A share: its intervals come cut to [0, 1] (the API's t over seeds), so the axis holds them.
      yRange={[0, 1]}
      height={240}
      data={alignSeries(lines.map((l) => l.points.map((p) => [p.x, p.y] as [number, number])))}
      series={lines.map((l) => ({ label: `weak = ${l.weak}`, color: colourOf(l.weak) }))}
      whiskers={whiskers}
      summary={lines.map((l) =>
        `weak ${l.weak}: ${l.points.map((p) => `${formatParams(p.x)} ${p.y.toFixed(3)}${p.ci}`).join(", ")}`
      ).join("; ")}
    />
  );
}

export const PROBE_KINDS: { kind: string; color: string; dash?: number[] }[] = [
  { kind: "lp(weak)", color: "#ff7f0e" },
  { kind: "lp(gt)", color: "#1f77b4" },
  // Dashed: it often lies on lp(gt), which must stay visible under it.
  { kind: "ft(weak)+lp(gt)", color: "#9467bd", dash: [6, 4] },
  { kind: "ft(gt)", color: "#111111" },
];

/**
 * Linear-probe test accuracy per layer for the four probe kinds (means over runs), with each single probe's
 * Wilson interval where the test set's size `nTest` is known.
 */
export function SaliencyChart(
  { probes, title, nTest }: { probes: ProbeRow[]; title?: string; nTest?: number },
) {
  if (probes.length === 0) return <EmptyState title="No probe results here." />;
  const known = PROBE_KINDS.map((k) => k.kind);
  const extra = [...new Set(probes.map((p) => p.kind.toLowerCase()))].filter((k) => !known.includes(k));
  const kinds = [
    ...PROBE_KINDS,
    ...extra.map((kind, i) => ({ kind, color: PALETTE[(i + 2) % PALETTE.length], dash: undefined })),
  ];
  const byLayer = kinds.map(({ kind }) =>
    [...groupBy(probes.filter((p) => p.kind.toLowerCase() === kind), (p) => String(p.layer))]
      .map(([layer, g]) => ({ layer: Number(layer), accuracies: g.map((p) => p.accuracy) }))
      .sort((a, b) => a.layer - b.layer)
  );
  const present = kinds.map((k, i) => ({ ...k, points: byLayer[i] })).filter((k) => k.points.length > 0)
    .map((k) => ({
      ...k,
      list: k.points.map((p) => [p.layer, mean(p.accuracies)!] as [number, number]),
    }));
  const whiskers = probeWhiskers(present, nTest);
  // The axis holds every point, whisker and the chance line.
  const ends = [
    0.5,
    ...present.flatMap((k) => k.list.map(([, y]) => y)),
    ...whiskers.flatMap((w) => [w.lo, w.hi]),
  ];
  return (
    <Chart
      testId="saliency"
      title={title ?? "Linear-probe test accuracy per layer"}
      xLabel="layer (0 = embeddings)"
      integerX
      yLabel="test accuracy"
      height={260}
      chance={0.5}
      data={alignSeries(present.map((k) => k.list))}
      series={present.map((k) => ({ label: k.kind, color: k.color, dash: k.dash }))}
      whiskers={whiskers}
      yRange={[Math.max(0, Math.min(...ends) - 0.02), Math.min(1, Math.max(...ends) + 0.02)]}
    />
  );
}
