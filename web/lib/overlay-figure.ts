/**
 * The overlay chart as data: a standalone SVG (axes, ticks, one polyline per curve, translucent min–max
 * bands, faint raw curves behind smoothed ones) and its points as CSV. The Compare page shows this SVG,
 * draws it on a canvas for PNG export and downloads it as is, so the three exports are one figure.
 */
import type { XY } from "./curve-transforms.ts";

export interface OverlayCurve {
  label: string;
  color: string;
  /** What is drawn (smoothed when smoothing is on). */
  points: XY[];
  /** The unsmoothed curve, drawn faint behind `points`. */
  raw?: XY[];
  /** A min–max band (a group of runs). */
  band?: { x: number; lo: number; hi: number }[];
  dash?: string;
}

export interface OverlayFigure {
  title: string;
  xLabel: string;
  yLabel: string;
  logY: boolean;
  curves: OverlayCurve[];
  width: number;
  height: number;
}

const MARGIN = { left: 64, right: 16, top: 28, bottom: 44 };
export const LEGEND_ROW = 18;

/** Legend entries per row: one on a phone-width figure, where long run names need the whole width. */
export const legendColumns = (width: number) => (width < 600 ? 1 : 3);

/** Rows the legend takes below the plot (the figure's height includes them). */
export const legendRows = (curves: number, width: number) => Math.ceil(curves / legendColumns(width));

/** About `count` round tick values across [lo, hi] (1, 2 or 5 × 10^k apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

const escapeXml = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!,
  );

/** The value drawn on the y axis: its log10 on a log axis (non-positive values are left out there). */
const yValue = (y: number, logY: boolean) => (logY ? (y > 0 ? Math.log10(y) : NaN) : y);

/** The plot's scales: data x/y → pixels, over every finite point, band and raw curve. */
export function overlayScales(fig: OverlayFigure) {
  const xs: number[] = [], ys: number[] = [];
  for (const c of fig.curves) {
    for (const p of [...c.points, ...(c.raw ?? [])]) {
      const y = yValue(p.y, fig.logY);
      if (Number.isFinite(p.x) && Number.isFinite(y)) xs.push(p.x), ys.push(y);
    }
    for (const b of c.band ?? []) {
      for (const v of [b.lo, b.hi]) {
        const y = yValue(v, fig.logY);
        if (Number.isFinite(y)) xs.push(b.x), ys.push(y);
      }
    }
  }
  const pad = (lo: number, hi: number) => (hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5]);
  const [x0, x1] = pad(Math.min(...xs, Infinity), Math.max(...xs, -Infinity));
  const [y0, y1] = pad(Math.min(...ys, Infinity), Math.max(...ys, -Infinity));
  const plotBottom = fig.height - MARGIN.bottom - LEGEND_ROW * legendRows(fig.curves.length, fig.width);
  const px = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * (fig.width - MARGIN.left - MARGIN.right);
  const py = (y: number) => plotBottom - ((yValue(y, fig.logY) - y0) / (y1 - y0)) * (plotBottom - MARGIN.top);
  return { x0, x1, y0, y1, px, py, plotBottom, empty: xs.length === 0 };
}

const fmt = (v: number) => String(+v.toPrecision(4));
const coords = (points: XY[], px: (x: number) => number, py: (y: number) => number) =>
  points.map((p) => [px(p.x), py(p.y)]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    .map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");

/** The figure as a standalone SVG document (inline styles only, so it renders the same outside the page). */
export function overlaySvg(fig: OverlayFigure): string {
  const { x0, x1, y0, y1, px, py, plotBottom } = overlayScales(fig);
  const right = fig.width - MARGIN.right;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${fig.width}" height="${fig.height}" ` +
    `viewBox="0 0 ${fig.width} ${fig.height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="16" font-size="13" font-weight="600">${escapeXml(fig.title)}</text>`,
  ];
  for (const t of niceTicks(x0, x1)) {
    parts.push(
      `<line x1="${px(t).toFixed(1)}" x2="${
        px(t).toFixed(1)
      }" y1="${MARGIN.top}" y2="${plotBottom}" stroke="#eceff1"/>`,
      `<text x="${px(t).toFixed(1)}" y="${plotBottom + 14}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  for (const t of niceTicks(y0, y1)) {
    const y = plotBottom - ((t - y0) / (y1 - y0)) * (plotBottom - MARGIN.top);
    const label = fig.logY ? fmt(10 ** t) : fmt(t);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eceff1"/>`,
      `<text x="${MARGIN.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${label}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${plotBottom}" stroke="#546e7a"/>`,
    `<line x1="${MARGIN.left}" x2="${right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#546e7a"/>`,
    `<text x="${(MARGIN.left + right) / 2}" y="${plotBottom + 30}" text-anchor="middle">${
      escapeXml(fig.xLabel)
    }</text>`,
    `<text transform="translate(14 ${(MARGIN.top + plotBottom) / 2}) rotate(-90)" text-anchor="middle">${
      escapeXml(fig.yLabel + (fig.logY ? " (log)" : ""))
    }</text>`,
  );
  for (const c of fig.curves) {
    if (c.band?.length) {
      const upper = c.band.map((b) => ({ x: b.x, y: b.hi })),
        lower = c.band.map((b) => ({ x: b.x, y: b.lo }));
      parts.push(
        `<polygon points="${coords([...upper, ...lower.reverse()], px, py)}" fill="${c.color}" ` +
          `fill-opacity="0.18" stroke="none"/>`,
      );
    }
    if (c.raw) {
      parts.push(
        `<polyline points="${coords(c.raw, px, py)}" fill="none" stroke="${c.color}" stroke-opacity="0.25"/>`,
      );
    }
    parts.push(
      `<polyline data-label="${escapeXml(c.label)}" points="${coords(c.points, px, py)}" fill="none" ` +
        `stroke="${c.color}" stroke-width="2"${c.dash ? ` stroke-dasharray="${c.dash}"` : ""}/>`,
    );
  }
  const columns = legendColumns(fig.width), rows = legendRows(fig.curves.length, fig.width);
  fig.curves.forEach((c, i) => {
    const x = (columns === 1 ? 8 : MARGIN.left) + (i % columns) * ((right - MARGIN.left) / columns);
    const y = fig.height - LEGEND_ROW * (rows - Math.floor(i / columns)) + 4;
    parts.push(
      `<line x1="${x}" x2="${x + 18}" y1="${y - 4}" y2="${y - 4}" stroke="${c.color}" stroke-width="2"${
        c.dash ? ` stroke-dasharray="${c.dash}"` : ""
      }/>`,
      `<text x="${x + 22}" y="${y}">${escapeXml(c.label)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

const csvCell = (v: string | number) => {
  const text = typeof v === "number" ? (Number.isFinite(v) ? String(v) : "") : v;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

/** The figure's data, one row per point: curve, x, the value drawn, the raw value, the band's min and max. */
export function overlayCsv(fig: OverlayFigure): string {
  const lines = [["curve", fig.xLabel, "value", "raw", "min", "max"].map(csvCell).join(",")];
  for (const c of fig.curves) {
    const raw = new Map((c.raw ?? c.points).map((p) => [p.x, p.y]));
    const band = new Map((c.band ?? []).map((b) => [b.x, b]));
    for (const p of c.points) {
      const b = band.get(p.x);
      lines.push([c.label, p.x, p.y, raw.get(p.x) ?? NaN, b?.lo ?? NaN, b?.hi ?? NaN].map(csvCell).join(","));
    }
  }
  return lines.join("\n") + "\n";
}
