/**
 * A uPlot chart as a Preact component. uPlot draws on a canvas; the figure carries an aria-label and a text
 * summary for screen readers. Data updates reuse the plot (keeping zoom and cursor) while the series stay
 * the same; a new set of series rebuilds it. `markers` are labelled points drawn on top (e.g. the
 * early-stopping point), `whiskers` vertical intervals (e.g. a point's 95 % interval), `steps` labelled
 * vertical lines (e.g. the checkpoint a result reads).
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { type Box, logTickLabels, placeLabel } from "../lib/chart-layout.ts";
import { formatParams, yTickLabels } from "../lib/format.ts";

export interface ChartSeries {
  label: string;
  color: string;
  dash?: number[];
  width?: number;
  points?: boolean;
  /** Points drawn as rings (white inside) rather than dots: a second way to tell series of one colour apart. */
  open?: boolean;
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

/** A log-axis tick: "1 M", "20 k" (the parameter count without the trailing zeros of "1.00 M"). */
const logTickText = (v: number) => formatParams(v).replace(/\.0+(?= )/, "");

/** The indexes of a data column's points (its values that are not null). */
const pointIndexes = (column: ArrayLike<number | null | undefined>) =>
  Array.from(column, (v, k) => (v === null || v === undefined ? -1 : k)).filter((k) => k >= 0);

/** The font of the text the chart draws on its canvas (device pixels). */
const canvasFont = (px: number) => `${Math.round(px * devicePixelRatio)}px system-ui, sans-serif`;

/** The plot area's box on the canvas. */
const plotBox = (u: uPlot): Box => ({
  left: u.bbox.left,
  top: u.bbox.top,
  right: u.bbox.left + u.bbox.width,
  bottom: u.bbox.top + u.bbox.height,
});

/**
 * The labels of one drawing of the plot (chance, checkpoint lines, markers): each goes where it is asked,
 * moved clear of the labels and marker points placed before it and kept inside the plot area (never over
 * the axes), on a white halo so that lines under it do not cross its letters.
 */
function canvasLabels(u: uPlot) {
  const taken: Box[] = [];
  const bounds = plotBox(u);
  const gap = 4 * devicePixelRatio;
  return {
    /** Something a label must not cover (a marker's point). */
    keepClear(box: Box): void {
      taken.push(box);
    },
    /** `text` with its top at y and its left end at x (`align` "left") or its right end (`align` "right"). */
    draw(text: string, x: number, y: number, color: string, align: "left" | "right") {
      const ctx = u.ctx;
      ctx.save();
      ctx.font = canvasFont(11);
      // uPlot leaves the y axis's right alignment on the context: draw from the box's left end, top down.
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      const width = ctx.measureText(text).width;
      const height = 13 * devicePixelRatio;
      const box = placeLabel({ x: align === "left" ? x : x - width, y }, { width, height }, taken, bounds);
      taken.push({ ...box, left: box.left - gap / 2, right: box.right + gap / 2 });
      ctx.lineJoin = "round";
      ctx.lineWidth = 3 * devicePixelRatio;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
      ctx.strokeText(text, box.left, box.top + devicePixelRatio);
      ctx.fillStyle = color;
      ctx.fillText(text, box.left, box.top + devicePixelRatio);
      ctx.restore();
    },
  };
}

type CanvasLabels = ReturnType<typeof canvasLabels>;

/** A dashed horizontal line at chance accuracy across the plot, labelled at its right end (above it). */
function drawChance(u: uPlot, chance: number, labels: CanvasLabels): void {
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
  ctx.restore();
  const right = u.bbox.left + u.bbox.width - 4 * devicePixelRatio;
  labels.draw(`chance ${chance.toFixed(2)}`, right, y - 15 * devicePixelRatio, "#b42318", "right");
}

/**
 * Vertical intervals with caps (a band behind those over seeds), cut at the plot area's top and bottom (an
 * interval past the y range would cross the x axis's labels); sideways they may reach past it.
 */
function drawWhiskers(u: uPlot, whiskers: ChartWhisker[]): void {
  const ctx = u.ctx;
  const cap = 4 * devicePixelRatio;
  ctx.save();
  ctx.beginPath();
  ctx.rect(0, u.bbox.top, ctx.canvas.width, u.bbox.height);
  ctx.clip();
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
 * Dashed vertical lines, each labelled near the bottom of the plot area beside its line (inside the plot:
 * clear of the axis titles; above one another where they would meet).
 */
function drawStepLines(u: uPlot, lines: ChartStepLine[], labels: CanvasLabels): void {
  const ctx = u.ctx;
  const bottom = u.bbox.top + u.bbox.height;
  const gap = 4 * devicePixelRatio;
  const placed: Array<{ x: number; line: ChartStepLine }> = [];
  ctx.save();
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
  for (const line of lines) {
    // Whole pixels, so the line keeps its colour instead of blurring over two columns.
    const x = Math.round(u.valToPos(line.x, "x", true));
    if (!Number.isFinite(x)) continue;
    ctx.strokeStyle = line.color;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, bottom);
    ctx.stroke();
    placed.push({ x, line });
  }
  ctx.restore();
  // Right of its line, or left of it when the line is in the right half of the plot.
  for (const { x, line } of placed) {
    const leftOfLine = x > u.bbox.left + u.bbox.width / 2;
    const y = bottom - 19 * devicePixelRatio;
    labels.draw(line.label, leftOfLine ? x - gap : x + gap, y, line.color, leftOfLine ? "right" : "left");
  }
}

/** Width of the y axis: its widest tick label plus room for the axis title, so the title never sits under. */
function yAxisSize(u: uPlot, values: string[] | null): number {
  u.ctx.save();
  u.ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
  const widest = Math.max(0, ...(values ?? []).map((v) => u.ctx.measureText(v).width / devicePixelRatio));
  u.ctx.restore();
  return Math.ceil(widest) + 36;
}

/** The tick labels of a log x axis, as many as its width holds (lib/chart-layout.ts logTickLabels). */
function logXTicks(u: uPlot, splits: number[]): string[] {
  const { min, max } = u.scales.x;
  const decades = min && max && min > 0 ? Math.log10(max / min) : 1;
  const pxPerDecade = u.bbox.width / devicePixelRatio / Math.max(decades, 1e-9);
  // The widest label ("500 k") in the axis font, and a gap.
  u.ctx.save();
  u.ctx.font = canvasFont(12);
  const widest = Math.max(...splits.map((v) => u.ctx.measureText(logTickText(v)).width / devicePixelRatio));
  u.ctx.restore();
  return logTickLabels(splits, pxPerDecade, widest + 12, logTickText);
}

/** Each marker's point (a ring at its x, y), kept clear of the labels. */
function drawMarkerPoints(u: uPlot, markers: ChartMarker[], labels: CanvasLabels): void {
  const ctx = u.ctx;
  const r = 6 * devicePixelRatio;
  ctx.save();
  for (const m of markers) {
    const cx = u.valToPos(m.x, "x", true);
    const cy = u.valToPos(m.y, "y", true);
    if (!Number.isFinite(cx) || !Number.isFinite(cy)) continue;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.strokeStyle = m.color;
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.stroke();
    const pad = r + 2 * devicePixelRatio;
    labels.keepClear({ left: cx - pad, top: cy - pad, right: cx + pad, bottom: cy + pad });
  }
  ctx.restore();
}

/** Each marker's label beside its point: up and to the right, or to the left in the plot's right half. */
function drawMarkerLabels(u: uPlot, markers: ChartMarker[], labels: CanvasLabels): void {
  const r = 6 * devicePixelRatio;
  for (const m of markers) {
    const cx = u.valToPos(m.x, "x", true);
    const cy = u.valToPos(m.y, "y", true);
    if (!Number.isFinite(cx) || !Number.isFinite(cy)) continue;
    const leftOfPoint = cx > u.bbox.left + u.bbox.width / 2;
    const x = leftOfPoint ? cx - r - 3 * devicePixelRatio : cx + r + 3 * devicePixelRatio;
    labels.draw(m.label, x, cy - r - 16 * devicePixelRatio, m.color, leftOfPoint ? "right" : "left");
  }
}

/**
 * The x scale: linear (over `xRange` where given), or log padded by a factor each side of the data's own
 * ends (uPlot widens a single x to two decades before it asks) instead of snapping to whole decades.
 */
function xScale(props: ChartProps): uPlot.Scale {
  if (!props.logX) return { time: false, ...(props.xRange ? { range: props.xRange } : {}) };
  return {
    time: false,
    distr: 3,
    range: (u, min, max) => {
      const xs = (u.data[0] as number[]).filter((v) => v > 0);
      const [lo, hi] = xs.length > 0 ? [Math.min(...xs), Math.max(...xs)] : [min, max];
      return [niceLogBound(lo / 1.3, -1), niceLogBound(hi * 1.3, 1)];
    },
  };
}

/** One series as uPlot draws it: its line, and its points as dots or rings. */
function seriesOptions(s: ChartSeries): uPlot.Series {
  return {
    label: s.label,
    stroke: s.color,
    width: s.width ?? 2,
    dash: s.dash,
    spanGaps: true,
    value: (_u, v) => (v === null ? "" : v.toFixed(3)),
    points: {
      show: s.points ?? true,
      size: 7,
      fill: s.open ? "#ffffff" : s.color,
      // Every point, not only those uPlot finds between the x range's ends: where several points share the
      // end's x (a scatter's), it finds only the first.
      filter: (u, i, show) => show ? pointIndexes(u.data[i]) : null,
    },
  };
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
      scales: { x: xScale(props), y: props.yRange ? { range: props.yRange } : {} },
      axes: [
        {
          ...axisStyle,
          label: props.xLabel,
          values: props.logX ? logXTicks : undefined,
          // uPlot keeps only powers of ten on log axes by default; logXTicks picks 1, 2 and 5 where they fit.
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
        ...props.series.map(seriesOptions),
      ],
      // A dashed series has a dashed legend marker: series told apart by dash alone are told apart there too.
      legend: { live: true, markers: { dash: (_u, i) => (props.series[i - 1]?.dash ? "dashed" : "solid") } },
      hooks: {
        draw: [(u) => {
          // Shapes first, then their labels on top, each clear of the ones before it.
          const labels = canvasLabels(u);
          drawWhiskers(u, whiskers.current);
          drawMarkerPoints(u, markers.current, labels);
          if (chance.current !== undefined) drawChance(u, chance.current, labels);
          drawStepLines(u, steps.current, labels);
          drawMarkerLabels(u, markers.current, labels);
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
