/**
 * A uPlot chart as a Preact component. uPlot draws on a canvas; the figure carries an aria-label and a text
 * summary for screen readers. Data updates reuse the plot (keeping zoom and cursor) while the series stay
 * the same; a new set of series rebuilds it. `markers` are labelled points drawn on top (e.g. the
 * early-stopping point), `whiskers` vertical intervals (e.g. a point's 95 % interval), `steps` labelled
 * vertical lines (e.g. the checkpoint a result reads).
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { formatParams, yTickLabels } from "../lib/format.ts";

export interface ChartSeries {
  label: string;
  color: string;
  dash?: number[];
  width?: number;
  points?: boolean;
}

export interface ChartMarker {
  x: number;
  y: number;
  label: string;
  color: string;
}

/** A vertical interval at x (e.g. a 95 % interval around a point), drawn with short caps. */
export interface ChartWhisker {
  x: number;
  lo: number;
  hi: number;
  color: string;
  /** Drawn as a translucent band behind the whisker: a spread over seeds, not over test examples. */
  band?: boolean;
  /** Pixels to shift it sideways, so intervals of series at the same x stay apart. */
  dx?: number;
}

/** A labelled vertical line at x (e.g. the training step a result reads). */
export interface ChartStepLine {
  x: number;
  label: string;
  color: string;
}

export interface ChartProps {
  title: string;
  xLabel: string;
  yLabel: string;
  /** x values first, then one array per series (null = no point). */
  data: (number | null)[][];
  series: ChartSeries[];
  /** Log-scale x axis with parameter-count tick labels (1 k, 1 M). */
  logX?: boolean;
  yRange?: [number, number];
  /** A fixed x range (linear axes), e.g. [0, 1] for a share. */
  xRange?: [number, number];
  /** Whole-number x ticks (layers, steps). */
  integerX?: boolean;
  height?: number;
  markers?: ChartMarker[];
  whiskers?: ChartWhisker[];
  steps?: ChartStepLine[];
  /** Accuracy plots: a labelled dashed line at chance (the majority-class rate; 0.5 on a balanced task). */
  chance?: number;
  summary?: string;
  testId?: string;
}

/** The nearest 1, 2 or 5 times a power of ten below (direction −1) or above (+1) v: round log-axis ends. */
function niceLogBound(v: number, direction: -1 | 1): number {
  if (!(v > 0)) return v;
  const power = 10 ** Math.floor(Math.log10(v));
  const steps = [1, 2, 5, 10].map((m) => m * power);
  return direction < 0 ? steps.filter((s) => s <= v).pop()! : steps.find((s) => s >= v)!;
}

/** Labels 1, 2 and 5 times a power of ten on a log axis; the other ticks stay unlabelled. */
function logTickLabel(v: number | null): string {
  if (v === null || !(v > 0)) return "";
  const mantissa = Math.round(v / 10 ** Math.floor(Math.log10(v) + 1e-9));
  return mantissa === 1 || mantissa === 2 || mantissa === 5 ? formatParams(v) : "";
}

/** A dashed horizontal line at chance accuracy across the plot, labelled at its right end. */
function drawChance(u: uPlot, chance: number): void {
  const y = u.valToPos(chance, "y", true);
  if (!Number.isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#b42318";
  ctx.lineWidth = devicePixelRatio;
  ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.beginPath();
  ctx.moveTo(u.bbox.left, y);
  ctx.lineTo(u.bbox.left + u.bbox.width, y);
  ctx.stroke();
  ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
  ctx.fillStyle = "#b42318";
  const label = `chance ${chance.toFixed(2)}`;
  // Inside the plot area (never over the axis titles): above the line, or below it at the top edge.
  const below = y - 16 * devicePixelRatio < u.bbox.top;
  ctx.fillText(
    label,
    u.bbox.left + u.bbox.width - ctx.measureText(label).width - 4 * devicePixelRatio,
    below ? y + 14 * devicePixelRatio : y - 4 * devicePixelRatio,
  );
  ctx.restore();
}

function drawWhiskers(u: uPlot, whiskers: ChartWhisker[]): void {
  const ctx = u.ctx;
  const cap = 4 * devicePixelRatio;
  ctx.save();
  ctx.lineWidth = devicePixelRatio;
  for (const w of whiskers) {
    const cx = u.valToPos(w.x, "x", true) + (w.dx ?? 0) * devicePixelRatio;
    const top = u.valToPos(w.hi, "y", true);
    const bottom = u.valToPos(w.lo, "y", true);
    if (![cx, top, bottom].every(Number.isFinite)) continue;
    if (w.band) {
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = w.color;
      ctx.fillRect(cx - 2 * cap, top, 4 * cap, bottom - top);
      ctx.globalAlpha = 1;
    }
    ctx.strokeStyle = w.color;
    ctx.beginPath();
    ctx.moveTo(cx, top);
    ctx.lineTo(cx, bottom);
    for (const y of [top, bottom]) {
      ctx.moveTo(cx - cap, y);
      ctx.lineTo(cx + cap, y);
    }
    ctx.stroke();
  }
  ctx.restore();
}

/**
 * Dashed vertical lines, each labelled at the bottom of the plot area (inside it: clear of the axis titles
 * and of the marker labels, which sit above their points).
 */
function drawStepLines(u: uPlot, lines: ChartStepLine[]): void {
  const ctx = u.ctx;
  ctx.save();
  ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
  const bottom = u.bbox.top + u.bbox.height;
  lines.forEach((line, i) => {
    // Whole pixels, so the line keeps its colour instead of blurring over two columns.
    const x = Math.round(u.valToPos(line.x, "x", true));
    if (!Number.isFinite(x)) return;
    ctx.strokeStyle = line.color;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, bottom);
    ctx.stroke();
    const width = ctx.measureText(line.label).width;
    const gap = 4 * devicePixelRatio;
    const tx = x + gap + width > u.bbox.left + u.bbox.width ? x - gap - width : x + gap;
    ctx.fillStyle = line.color;
    ctx.fillText(line.label, tx, bottom - (6 + 14 * i) * devicePixelRatio);
  });
  ctx.restore();
}

/** Width of the y axis: its widest tick label plus room for the axis title, so the title never sits under. */
function yAxisSize(u: uPlot, values: string[] | null): number {
  u.ctx.save();
  u.ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
  const widest = Math.max(0, ...(values ?? []).map((v) => u.ctx.measureText(v).width / devicePixelRatio));
  u.ctx.restore();
  return Math.ceil(widest) + 36;
}

function drawMarkers(u: uPlot, markers: ChartMarker[]): void {
  const ctx = u.ctx;
  ctx.save();
  ctx.font = `${Math.round(12 * devicePixelRatio)}px system-ui, sans-serif`;
  for (const m of markers) {
    const cx = u.valToPos(m.x, "x", true);
    const cy = u.valToPos(m.y, "y", true);
    if (!Number.isFinite(cx) || !Number.isFinite(cy)) continue;
    const r = 6 * devicePixelRatio;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.strokeStyle = m.color;
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.stroke();
    const textWidth = ctx.measureText(m.label).width;
    const right = u.bbox.left + u.bbox.width;
    const tx = cx + r + 4 + textWidth > right ? cx - r - 4 - textWidth : cx + r + 4;
    // Above the point, unless that would leave the plot area.
    const ty = cy - r - 12 * devicePixelRatio < u.bbox.top ? cy + r + 12 * devicePixelRatio : cy - r;
    ctx.fillStyle = m.color;
    ctx.fillText(m.label, tx, ty);
  }
  ctx.restore();
}

export function Chart(props: ChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const seriesKey = useRef("");
  const markers = useRef<ChartMarker[]>(props.markers ?? []);
  markers.current = props.markers ?? [];
  const whiskers = useRef<ChartWhisker[]>(props.whiskers ?? []);
  whiskers.current = props.whiskers ?? [];
  const steps = useRef<ChartStepLine[]>(props.steps ?? []);
  steps.current = props.steps ?? [];
  const chance = useRef<number | undefined>(props.chance);
  chance.current = props.chance;
  const key = JSON.stringify([
    props.series,
    props.logX,
    props.integerX,
    props.yRange,
    props.xRange,
    props.xLabel,
    props.yLabel,
  ]);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const data = props.data as uPlot.AlignedData;
    if (plot.current && seriesKey.current === key) {
      plot.current.setData(data);
      return;
    }
    plot.current?.destroy();
    seriesKey.current = key;
    const axisStyle = {
      stroke: "#4a5560",
      grid: { stroke: "#e6e9ed", width: 1 },
      ticks: { stroke: "#d0d5db" },
    };
    const options: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: props.height ?? 280,
      scales: {
        // Log x: pad the data by a factor each side instead of snapping to whole decades.
        x: props.logX
          ? {
            time: false,
            distr: 3,
            range: (_u, min, max) => [niceLogBound(min / 1.3, -1), niceLogBound(max * 1.3, 1)],
          }
          : { time: false, ...(props.xRange ? { range: props.xRange } : {}) },
        y: props.yRange ? { range: props.yRange } : {},
      },
      axes: [
        {
          ...axisStyle,
          label: props.xLabel,
          values: props.logX ? (_u, splits) => splits.map(logTickLabel) : undefined,
          // uPlot keeps only powers of ten on log axes by default; logTickLabel picks 1, 2 and 5 instead.
          filter: props.logX ? (_u, splits) => splits : undefined,
          incrs: props.integerX ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] : undefined,
        },
        {
          ...axisStyle,
          label: props.yLabel,
          size: yAxisSize,
          // uPlot's default labels round to 3 decimals: learning rates (1e-4…1e-3) would repeat "0.001".
          values: (_u, splits) => yTickLabels(splits),
        },
      ],
      series: [
        {
          label: props.xLabel,
          value: (_u, v) => (v === null ? "" : props.logX ? formatParams(v) : String(v)),
        },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 2,
          dash: s.dash,
          spanGaps: true,
          value: (_u: uPlot, v: number | null) => (v === null ? "" : v.toFixed(3)),
          points: { show: s.points ?? true, size: 7, fill: s.color },
        })),
      ],
      legend: { live: true },
      hooks: {
        draw: [(u) => {
          if (chance.current !== undefined) drawChance(u, chance.current);
          drawStepLines(u, steps.current);
          drawWhiskers(u, whiskers.current);
          drawMarkers(u, markers.current);
        }],
      },
    };
    plot.current = new uPlot(options, data, el);
  }, [key, props.data]);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const observer = new ResizeObserver(() => {
      if (plot.current) {
        plot.current.setSize({ width: Math.max(280, el.clientWidth), height: props.height ?? 280 });
      }
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  return (
    <figure class="chart" aria-label={props.title} data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div ref={container} class="chart-canvas" />
      {props.summary && <p class="visually-hidden">{props.summary}</p>}
    </figure>
  );
}

/** Aligns several (x, y) point lists on one sorted x array, as uPlot wants. */
export function alignSeries(lists: Array<Array<[number, number]>>): (number | null)[][] {
  const xs = [...new Set(lists.flatMap((list) => list.map(([x]) => x)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = lists.map((list) => {
    const column: (number | null)[] = new Array(xs.length).fill(null);
    for (const [x, y] of list) column[index.get(x)!] = y;
    return column;
  });
  return [xs, ...columns];
}
