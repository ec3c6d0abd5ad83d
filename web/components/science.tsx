/**
 * The paper's views of weak-to-strong results, shared by the experiment, sweep and results pages:
 * figure 3 (test accuracy vs strong size, one line per weak supervisor, weak and ceiling references),
 * PGR bars per pair and method, the median-PGR table, agreement (figure 8) and probe saliency (§5.2.3).
 */
import { METHOD_NAMES } from "../../server/contract/methods.ts";
import { alignSeries, Chart } from "./chart.tsx";
import { EmptyState } from "./ui.tsx";
import { formatNumber, formatParams, mean, median, PALETTE } from "../lib/format.ts";
import type { ProbeRow, ResultRow } from "../lib/types.ts";

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
        `Test accuracy vs strong-model ${axis === "compute" ? "pretraining compute" : "size"} (${method}${
          useOracle ? ", GT early stopping" : ""
        })`}
      xLabel={axis === "compute"
        ? "strong-model pretraining compute, FLOP = 6 · params · tokens (log)"
        : "strong-model parameters (log)"}
      yLabel="test accuracy"
      logX
      yRange={[lo, hi]}
      data={data}
      series={series}
      summary={lines.map((l) =>
        `weak ${l.weak}: ${l.points.map(([x, y]) => `${formatParams(x)} ${y.toFixed(3)}`).join(", ")}`
      ).join("; ")}
    />
  );
}

interface PairSummary {
  pair: string;
  weak: string;
  strong: string;
  byMethod: Map<string, { pgr: number | null; oraclePgr: number | null; seeds: number }>;
}

function summarizePairs(rows: ResultRow[], params: ParamsBySize): PairSummary[] {
  const order = sizeOrder(params);
  const pairs = groupBy(
    rows.filter((r) => r.weakSize && r.strongSize),
    (r) => `${r.weakSize}→${r.strongSize}`,
  );
  return [...pairs.entries()].map(([pair, group]) => ({
    pair,
    weak: group[0].weakSize!,
    strong: group[0].strongSize!,
    byMethod: new Map(
      [...groupBy(group, (r) => r.method ?? "naive")].map(([method, g]) => [method, {
        pgr: median(finite(g.map((r) => r.pgr))),
        oraclePgr: median(finite(g.map((r) => r.oraclePgr))),
        seeds: g.length,
      }]),
    ),
  })).sort((a, b) => order(a.weak, b.weak) || order(a.strong, b.strong));
}

/** PGR per (weak, strong) pair, one bar per method (median over seeds); drawn in HTML so values stay legible. */
export function PgrBars({ rows, params }: { rows: ResultRow[]; params: ParamsBySize }) {
  const pairs = summarizePairs(rows, params);
  const methods = methodsOf(rows);
  const values = pairs.flatMap((p) => [...p.byMethod.values()].map((v) => v.pgr)).filter((v): v is number =>
    v !== null
  );
  if (values.length === 0) {
    // Finished rows without a PGR: ceiling and weak scored the same, so the ratio is undefined.
    return rows.length > 0
      ? (
        <EmptyState title="No PGR: the ceiling and the weak model have the same test accuracy.">
          PGR = (student − weak) / (ceiling − weak) is undefined then; the accuracies are in the result rows.
        </EmptyState>
      )
      : <EmptyState title="No PGR values yet (they appear when an experiment finishes)." />;
  }
  const lo = Math.min(0, ...values), hi = Math.max(1, ...values);
  const span = hi - lo;
  const zero = (-lo / span) * 100;
  return (
    <div class="bars" data-testid="pgr-bars">
      <div class="legend-row">
        {methods.map((m, i) => (
          <span key={m} class="legend-item">
            <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />
            {m}
          </span>
        ))}
        <span class="muted small">PGR = (student − weak) / (ceiling − weak); 1 = full recovery</span>
      </div>
      {pairs.map((p) => (
        <div class="bar-group" key={p.pair}>
          <div class="bar-label">{p.pair}</div>
          <div class="bar-stack">
            {methods.map((m, i) => {
              const v = p.byMethod.get(m)?.pgr ?? null;
              if (v === null) return null;
              const left = v >= 0 ? zero : zero + (v / span) * 100;
              const width = (Math.abs(v) / span) * 100;
              return (
                <div class="bar-row" key={m} title={`${p.pair} ${m}: PGR ${v.toFixed(3)}`}>
                  <div class="bar-track">
                    <div class="bar-zero" style={{ left: `${zero}%` }} />
                    <div class="bar-one" style={{ left: `${((1 - lo) / span) * 100}%` }} />
                    <div
                      class="bar"
                      style={{
                        left: `${left}%`,
                        width: `${width}%`,
                        background: PALETTE[i % PALETTE.length],
                      }}
                    />
                  </div>
                  <span class="bar-value">{m} {v.toFixed(2)}</span>
                </div>
              );
            })}
          </div>
        </div>
      ))}
    </div>
  );
}

/** Median PGR over pairs per task and method, final and with ground-truth early stopping. */
export function MedianPgrTable({ rows, params }: { rows: ResultRow[]; params: ParamsBySize }) {
  const tasks = tasksOf(rows);
  const methods = methodsOf(rows);
  const lines = tasks.flatMap((task) => {
    const pairs = summarizePairs(rows.filter((r) => (r.task ?? "?") === task), params);
    return methods.map((method) => {
      const cells = pairs.map((p) => p.byMethod.get(method)).filter((c) => c !== undefined);
      return {
        task,
        method,
        pairs: cells.length,
        seeds: cells.reduce((n, c) => n + c.seeds, 0),
        pgr: median(finite(cells.map((c) => c.pgr))),
        oraclePgr: median(finite(cells.map((c) => c.oraclePgr))),
      };
    }).filter((line) => line.pairs > 0);
  });
  if (lines.length === 0) return <EmptyState title="No results to summarize yet." />;
  return (
    <table class="table" data-testid="median-pgr">
      <caption class="visually-hidden">Median performance gap recovered per task and method</caption>
      <thead>
        <tr>
          <th scope="col">task</th>
          <th scope="col">method</th>
          <th scope="col" class="num">pairs</th>
          <th scope="col" class="num">runs</th>
          <th scope="col" class="num">median PGR</th>
          <th scope="col" class="num">median PGR (GT early stop)</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((l) => (
          <tr key={`${l.task}/${l.method}`}>
            <td>{l.task}</td>
            <td>{l.method}</td>
            <td class="num">{l.pairs}</td>
            <td class="num">{l.seeds}</td>
            <td class="num strong">{formatNumber(l.pgr, 3)}</td>
            <td class="num">{formatNumber(l.oraclePgr, 3)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every result row: the numbers behind the plots. */
export function ResultsTable({ rows }: { rows: ResultRow[] }) {
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="results-table">
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
              "best student",
              "best step",
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
              <td>{r.task}</td>
              <td>{r.weakSize}</td>
              <td>{r.strongSize}</td>
              <td>{r.method}</td>
              <td class="num">{r.seed ?? "—"}</td>
              <td class="num">{formatNumber(r.weakAcc)}</td>
              <td class="num">{formatNumber(r.ceilingAcc)}</td>
              <td class="num">{formatNumber(r.studentAcc)}</td>
              <td class="num strong">{formatNumber(r.pgr)}</td>
              <td class="num">{formatNumber(r.oracleStudentAcc)}</td>
              <td class="num">{r.oracleStep ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
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
      data={alignSeries(present.map((k) => k.list))}
      series={present.map((k) => ({ label: k.kind, color: k.color }))}
    />
  );
}
