/**
 * The paper's views of weak-to-strong results, shared by the experiment, sweep and results pages:
 * figure 3 (test accuracy vs strong size, one line per weak supervisor, weak and ceiling references),
 * PGR bars per pair and method, the median-PGR table, agreement (figure 8) and probe saliency (§5.2.3).
 */
import { METHOD_NAMES } from "../../server/contract/methods.ts";
import { alignSeries, Chart } from "./chart.tsx";
import { EmptyState } from "./ui.tsx";
import { formatNumber, formatParams, mean, PALETTE } from "../lib/format.ts";
import { isPairwiseRow, PAIRWISE_ACCURACY } from "../lib/task-format.ts";
import type { ProbeRow, ResultRow } from "../lib/types.ts";
import type { ResultsSummary } from "../../server/contract/results.ts";
import { useResource } from "../lib/resource.ts";

export type ParamsBySize = ReadonlyMap<string, number>;

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

export function tasksOf(rows: ResultRow[]): string[] {
  return [...new Set(rows.map((r) => r.task ?? "?"))].sort();
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

/**
 * Figure 3: for one task and method, each weak supervisor is a line that starts at its own accuracy (at the
 * weak size) and goes through the student accuracies at each strong size; the ceiling (strong trained on
 * ground truth) is the black line. Accuracies are means over seeds.
 */
export function AccuracyVsSizePlot(
  { rows, params, method, useOracle = false, title, axis = "params" }: {
    rows: ResultRow[];
    /** The x value per size: parameters, or pretraining compute when `axis` is "compute". */
    params: ParamsBySize;
    method: string;
    useOracle?: boolean;
    title?: string;
    axis?: "params" | "compute";
  },
) {
  const chosen = rows.filter((r) => (r.method ?? "naive") === method && r.weakSize && r.strongSize);
  const known = chosen.filter((r) => params.has(r.weakSize!) && params.has(r.strongSize!));
  if (known.length === 0) {
    return <EmptyState title={`No ${method} results with known model sizes to plot.`} />;
  }
  const at = (size: string) => params.get(size)!;
  const ceiling: Array<[number, number]> = [];
  for (const [strong, group] of groupBy(known, (r) => r.strongSize!)) {
    const acc = mean(finite(group.map((r) => r.ceilingAcc)));
    if (acc !== null) ceiling.push([at(strong), acc]);
  }
  const weakRefs: Array<[number, number]> = [];
  const lines: Array<{ weak: string; points: Array<[number, number]> }> = [];
  const weakSizes = [...new Set(known.map((r) => r.weakSize!))].sort(sizeOrder(params));
  for (const weak of weakSizes) {
    const group = known.filter((r) => r.weakSize === weak);
    const weakAcc = mean(finite(group.map((r) => r.weakAcc)));
    const points: Array<[number, number]> = [];
    if (weakAcc !== null) {
      points.push([at(weak), weakAcc]);
      weakRefs.push([at(weak), weakAcc]);
    }
    for (const [strong, pair] of groupBy(group, (r) => r.strongSize!)) {
      const acc = mean(
        finite(pair.map((r) => useOracle ? r.oracleStudentAcc ?? r.studentAcc : r.studentAcc)),
      );
      if (acc !== null) points.push([at(strong), acc]);
    }
    lines.push({ weak, points: points.sort((a, b) => a[0] - b[0]) });
  }
  const data = alignSeries([ceiling, weakRefs, ...lines.map((l) => l.points)]);
  const accuracy = known.every(isPairwiseRow) ? "Pairwise test accuracy" : "Test accuracy";
  const series = [
    { label: "ceiling (strong on ground truth)", color: "#111111", width: 2.5 },
    { label: "weak models (on ground truth)", color: "#8a939c", dash: [6, 4] },
    ...lines.map((l, i) => ({ label: `student, weak = ${l.weak}`, color: PALETTE[i % PALETTE.length] })),
  ];
  const all = data.slice(1).flat().filter((v): v is number => v !== null);
  const lo = Math.max(0, Math.floor((Math.min(...all) - 0.02) * 20) / 20);
  const hi = Math.min(1, Math.ceil((Math.max(...all) + 0.02) * 20) / 20);
  return (
    <Chart
      testId="fig3"
      title={title ??
        `${accuracy} vs strong-model ${axis === "compute" ? "pretraining compute" : "size"} (${method}${
          useOracle ? ", GT early stopping" : ""
        })`}
      xLabel={axis === "compute"
        ? "strong-model pretraining compute, FLOP = 6 · params · tokens (log)"
        : "strong-model parameters (log)"}
      yLabel={accuracy.toLowerCase()}
      logX
      yRange={[Math.min(lo, 0.45), hi]}
      chance={0.5}
      data={data}
      series={series}
      summary={lines.map((l) =>
        `weak ${l.weak}: ${l.points.map(([x, y]) => `${formatParams(x)} ${y.toFixed(3)}`).join(", ")}`
      ).join("; ")}
    />
  );
}

/** The API's summary of a set of results (GET /api/results/summary): cells and medians, never recomputed here. */
export function useResultsSummary(query: string, cue: unknown) {
  return useResource<ResultsSummary>(`/results/summary${query}`, cue);
}

const pgrText = (v: number | null) => (v === null ? "—" : v.toFixed(2));

/**
 * PGR per (weak, strong) pair, one bar per method: the cell's PGR (of the seed-mean final accuracies)
 * with the t-interval of its per-seed PGRs as a whisker; cells whose gap is within noise say so instead.
 * Drawn in HTML so values stay legible.
 */
export function PgrBars({ summary, params }: { summary: ResultsSummary; params: ParamsBySize }) {
  const order = sizeOrder(params);
  const cells = [...summary.cells].sort((a, b) => order(a.weak, b.weak) || order(a.strong, b.strong));
  const methods = [...new Set(cells.map((c) => c.method))].sort(byMethodOrder);
  const shown = cells.filter((c) => !c.gap_too_small && c.pgr !== null && Number.isFinite(c.pgr));
  if (cells.length === 0) {
    return <EmptyState title="No PGR values yet (they appear when an experiment finishes)." />;
  }
  const ends = shown.flatMap((c) => [c.pgr, c.pgr_ci.lo, c.pgr_ci.hi]).filter((v): v is number =>
    typeof v === "number" && Number.isFinite(v)
  );
  const lo = Math.min(0, ...ends), hi = Math.max(1, ...ends);
  const span = hi - lo;
  const x = (v: number) => ((v - lo) / span) * 100;
  const pairs = groupBy(cells, (c) => `${c.weak}→${c.strong}`);
  return (
    <div class="bars" data-testid="pgr-bars">
      <div class="legend-row">
        {methods.map((m, i) => (
          <span key={m} class="legend-item">
            <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />
            {m}
          </span>
        ))}
        <span class="muted small">
          PGR = (student − weak) / (ceiling − weak) at the final checkpoint; 1 = full recovery; whisker: 95 %
          interval over seeds
        </span>
      </div>
      {[...pairs].map(([pair, group]) => (
        <div class="bar-group" key={pair}>
          <div class="bar-label">{pair}</div>
          <div class="bar-stack">
            {group.sort((a, b) => byMethodOrder(a.method, b.method)).map((c) => {
              const i = methods.indexOf(c.method);
              if (c.gap_too_small || c.pgr === null || !Number.isFinite(c.pgr)) {
                return (
                  <div class="bar-row" key={c.method}>
                    <span class="bar-value muted">
                      {c.method}: gap too small (ceiling − weak within noise)
                    </span>
                  </div>
                );
              }
              const v = c.pgr;
              const left = Math.min(x(0), x(v));
              const whisker = Number.isFinite(c.pgr_ci.lo) && Number.isFinite(c.pgr_ci.hi);
              return (
                <div class="bar-row" key={c.method} title={`${pair} ${c.method}: PGR ${v.toFixed(3)}`}>
                  <div class="bar-track">
                    <div class="bar-zero" style={{ left: `${x(0)}%` }} />
                    <div class="bar-one" style={{ left: `${x(1)}%` }} />
                    <div
                      class="bar"
                      style={{
                        left: `${left}%`,
                        width: `${Math.abs(x(v) - x(0))}%`,
                        background: PALETTE[i % PALETTE.length],
                      }}
                    />
                    {whisker && (
                      <div
                        class="bar-whisker"
                        style={{ left: `${x(c.pgr_ci.lo)}%`, width: `${x(c.pgr_ci.hi) - x(c.pgr_ci.lo)}%` }}
                      />
                    )}
                  </div>
                  <span class="bar-value">
                    {c.method} {pgrText(v)}
                    {whisker ? ` [${pgrText(c.pgr_ci.lo)}, ${pgrText(c.pgr_ci.hi)}]` : ""} · {c.seeds.length}
                    {" "}
                    seed
                    {c.seeds.length === 1 ? "" : "s"}
                  </span>
                </div>
              );
            })}
          </div>
        </div>
      ))}
    </div>
  );
}

/** The median PGR per task × method and per method over all tasks, as the API computed it. */
export function MedianPgrTable({ summary }: { summary: ResultsSummary }) {
  if (summary.medians.length === 0) return <EmptyState title="No results to summarize yet." />;
  return (
    <table class="table" data-testid="median-pgr">
      <caption class="visually-hidden">Median performance gap recovered per task and method</caption>
      <thead>
        <tr>
          <th scope="col">task</th>
          <th scope="col">method</th>
          <th scope="col" class="num">median PGR</th>
          <th scope="col" class="num">95 % interval</th>
          <th scope="col" class="num">pairs used</th>
          <th scope="col" class="num">left out (gap too small)</th>
        </tr>
      </thead>
      <tbody>
        {summary.medians.map((m) => (
          <tr key={`${m.task ?? "*"}/${m.method}`}>
            <td>{m.task ?? <em>all tasks</em>}</td>
            <td>{m.method}</td>
            <td class="num strong">{formatNumber(m.median_pgr, 3)}</td>
            <td class="num">[{formatNumber(m.median_ci.lo, 2)}, {formatNumber(m.median_ci.hi, 2)}]</td>
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

/**
 * Every result row: the numbers behind the plots. The headline columns are the final checkpoint's; the
 * student's validation-selected and ground-truth-oracle readings stand beside them with their steps.
 */
export function ResultsTable({ rows }: { rows: ResultRow[] }) {
  const hasControl = rows.some((r) => r.full?.control);
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="results-table">
        <caption class="small muted">
          Final checkpoint (the paper's reading) unless named. "selected" is the student at its best
          validation point, and a student's validation labels are the weak model's: it is the checkpoint that
          agrees with the supervisor most. The oracle picks on test and is an upper bound only. @N: the
          training step.
        </caption>
        <thead>
          <tr>
            {[
              "exp",
              "task",
              "weak",
              "strong",
              "method",
              "seed",
              "weak acc",
              "ceiling",
              "student",
              "PGR",
              "student selected (weak-labelled val)",
              "student oracle (best test)",
              ...(hasControl ? ["random-init ceiling"] : []),
            ]
              .map((h) => <th scope="col" key={h}>{h}</th>)}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td>
                <a href={`/experiments/${r.experimentId}`}>#{r.experimentId}</a>
              </td>
              <td>
                {r.task} {isPairwiseRow(r) && <span class="tag" title={PAIRWISE_ACCURACY}>pairwise</span>}
              </td>
              <td>{r.weakSize}</td>
              <td>{r.strongSize}</td>
              <td>{r.method}</td>
              <td class="num">{r.seed ?? "—"}</td>
              <td class="num">{at(r.weakAcc, r.full?.final?.steps.weak)}</td>
              <td class="num">{at(r.ceilingAcc, r.full?.final?.steps.ceiling)}</td>
              <td class="num">{at(r.studentAcc, r.full?.final?.steps.student)}</td>
              <td class="num strong">
                {r.gapTooSmall ? <span class="muted">gap too small</span> : formatNumber(r.pgr)}
              </td>
              <td class="num">{at(r.selectedStudentAcc, r.selectedStep)}</td>
              <td class="num">{at(r.oracleStudentAcc, r.oracleStep)}</td>
              {hasControl && (
                <td class="num">{at(r.full?.control?.ceiling_acc ?? null, r.full?.control?.step)}</td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The pipeline's plain-language cautions of these results (within noise of chance, gap too small). */
export function ResultWarnings({ rows }: { rows: ResultRow[] }) {
  const warnings = [
    ...new Set(
      rows.flatMap((r) =>
        (r.full?.warnings ?? []).map((w) =>
          `${r.weakSize}→${r.strongSize} (${r.method}, seed ${r.seed}): ${w}`
        )
      ),
    ),
  ];
  if (warnings.length === 0) return null;
  return (
    <div class="callout warning" role="note" data-testid="result-warnings">
      <strong>Read these results with care</strong>
      <ul>{warnings.slice(0, 8).map((w) => <li key={w}>{w}</li>)}</ul>
      {warnings.length > 8 && <p class="small">… and {warnings.length - 8} more.</p>}
    </div>
  );
}

const AGREEMENT_PARTS = [
  // The keys the pipeline writes (server/lab/metrics.ts Agreement).
  { key: "all", label: "all examples", color: "#1f2933" },
  { key: "supervisor_correct", label: "supervisor right", color: "#2ca02c" },
  { key: "supervisor_wrong", label: "supervisor wrong", color: "#d62728", dash: [6, 4] },
] as const;

/** Figure 8: student–supervisor agreement vs student size, one chart per method (means over weak sizes, seeds). */
export function AgreementCharts({ rows, params }: { rows: ResultRow[]; params: ParamsBySize }) {
  const withAgreement = rows.filter((r) => r.agreement && r.strongSize && params.has(r.strongSize));
  if (withAgreement.length === 0) {
    return <EmptyState title="No agreement figures in these results yet." />;
  }
  return (
    <div class="chart-grid">
      {methodsOf(withAgreement).map((method) => {
        const group = withAgreement.filter((r) => (r.method ?? "naive") === method);
        const lists = AGREEMENT_PARTS.map((part) =>
          [...groupBy(group, (r) => r.strongSize!)].flatMap(([strong, g]) => {
            const v = mean(finite(g.map((r) => r.agreement?.[part.key])));
            return v === null ? [] : [[params.get(strong)!, v] as [number, number]];
          }).sort((a, b) => a[0] - b[0])
        );
        return (
          <Chart
            key={method}
            testId={`agreement-${method}`}
            title={`Agreement with the supervisor — ${method}`}
            xLabel="student parameters (log)"
            yLabel="agreement"
            logX
            yRange={[0, 1]}
            height={240}
            data={alignSeries(lists)}
            series={AGREEMENT_PARTS.map((p) => ({
              label: p.label,
              color: p.color,
              dash: "dash" in p ? [...p.dash] : undefined,
            }))}
          />
        );
      })}
    </div>
  );
}

export const PROBE_KINDS = [
  { kind: "lp(weak)", color: "#ff7f0e" },
  { kind: "lp(gt)", color: "#1f77b4" },
  { kind: "ft(weak)+lp(gt)", color: "#9467bd" },
  { kind: "ft(gt)", color: "#111111" },
];

/** Linear-probe test accuracy per layer for the four probe kinds (means over runs). */
export function SaliencyChart({ probes, title }: { probes: ProbeRow[]; title?: string }) {
  if (probes.length === 0) return <EmptyState title="No probe results here." />;
  const known = PROBE_KINDS.map((k) => k.kind);
  const extra = [...new Set(probes.map((p) => p.kind.toLowerCase()))].filter((k) => !known.includes(k));
  const kinds = [
    ...PROBE_KINDS,
    ...extra.map((kind, i) => ({ kind, color: PALETTE[(i + 2) % PALETTE.length] })),
  ];
  const lists = kinds.map(({ kind }) =>
    [...groupBy(probes.filter((p) => p.kind.toLowerCase() === kind), (p) => String(p.layer))]
      .map(([layer, g]) => [Number(layer), mean(g.map((p) => p.accuracy))!] as [number, number])
      .sort((a, b) => a[0] - b[0])
  );
  const present = kinds.map((k, i) => ({ ...k, list: lists[i] })).filter((k) => k.list.length > 0);
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
      series={present.map((k) => ({ label: k.kind, color: k.color }))}
    />
  );
}
