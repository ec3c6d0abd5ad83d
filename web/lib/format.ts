/** Number, time and size formatting shared by the pages. */

export function formatParams(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  // Compute (FLOP) axes reach far beyond parameter counts.
  if (n >= 1e18) return `${(n / 1e18).toFixed(n >= 1e19 ? 0 : 1)} E`;
  if (n >= 1e15) return `${(n / 1e15).toFixed(n >= 1e16 ? 0 : 1)} P`;
  if (n >= 1e12) return `${(n / 1e12).toFixed(n >= 1e13 ? 0 : 1)} T`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)} k`;
  return String(n);
}

export function formatNumber(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  return n.toFixed(digits);
}

/** A fraction as a percentage, "12.3 %": a no-break space, so a line never ends between the number and "%". */
export function formatPercent(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  return `${(n * 100).toFixed(digits)}\u00a0%`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function median(values: number[]): number | null {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return null;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

export function mean(values: number[]): number | null {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? null : finite.reduce((a, b) => a + b, 0) / finite.length;
}

/** Tick labels with no more decimals than the tick spacing needs (0.10000000001 → "0.1"). */
export function yTickLabels(splits: number[]): string[] {
  const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 0;
  const small = splits.some((v) => v !== 0 && Math.abs(v) < 0.01);
  if (small && splits.every((v) => v === 0 || Math.abs(v) < 0.01)) {
    return splits.map((v) => (v === 0 ? "0" : v.toExponential(1)));
  }
  // As many decimals as the tick spacing has (0.25 → 2, 0.00005 → 5), at most 6.
  const decimals = step > 0
    ? [0, 1, 2, 3, 4, 5, 6].find((d) => Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) < 1e-6) ?? 6
    : 3;
  return splits.map((v) => String(+v.toFixed(decimals)));
}

/** A fixed palette that stays readable on white and is told apart without relying on red/green alone. */
export const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#9467bd",
  "#d62728",
  "#17becf",
  "#8c564b",
  "#e377c2",
];

/**
 * One colour per method, the same on every page, from hues outside PALETTE (which the model sizes use), so
 * a colour never means a size and a method on one page.
 */
export const METHOD_COLOURS: Record<string, string> = {
  naive: "#b07aa1",
  auxconf: "#edc948",
  bootstrap: "#76b7b2",
  generative: "#9c755f",
};

export function methodColour(method: string): string {
  return METHOD_COLOURS[method] ?? "#5c6b7a";
}

/**
 * One line style per method, for a chart whose colours already mean the weak model (PGR vs knowledge): a
 * dash, open or filled points, and both in words.
 */
export const METHOD_LINES: Record<string, MethodLine> = {
  naive: { word: "solid line, filled points" },
  auxconf: { dash: [6, 4], open: true, word: "dashed line, open points" },
  bootstrap: { dash: [2, 3], word: "dotted line, filled points" },
  generative: { dash: [10, 3, 2, 3], open: true, word: "dash-dot line, open points" },
};

export interface MethodLine {
  dash?: number[];
  open?: boolean;
  word: string;
}

export function methodLine(method: string): MethodLine {
  return METHOD_LINES[method] ?? { dash: [1, 5], open: true, word: "sparse dots, open points" };
}

/** "[0.53, 0.67]": a 95 % interval as the tables show it; null when either end is missing. */
export function formatInterval(
  interval: { lo: number | null; hi: number | null } | null | undefined,
  digits = 2,
): string | null {
  const { lo, hi } = interval ?? { lo: null, hi: null };
  if (typeof lo !== "number" || typeof hi !== "number" || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    return null;
  }
  return `[${lo.toFixed(digits)}, ${hi.toFixed(digits)}]`;
}

/** A config key as words: "studentMode" → "student mode", "alpha_max" → "alpha max". */
export function readableKey(key: string): string {
  return key.replace(/_/g, " ").replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
}

/** A ladder size's pretraining status in words, the same on the Models page and in the experiment form. */
export function modelStatusWord(
  m: { status: string; step?: number | null; totalSteps?: number | null },
): string {
  if (m.status === "missing" || m.status === "none") return "not pretrained";
  if (m.status === "partial" && m.step && m.totalSteps) {
    return `partial ${formatPercent(m.step / m.totalSteps, 0)}`;
  }
  return m.status;
}

/** A software WebGPU adapter: the CPU (Mesa's llvmpipe or lavapipe, SwiftShader). */
export const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|\bcpu\b/i;

/**
 * A WebGPU adapter's name as a person reads it. The lab stores the adapter's description followed by its
 * vendor and device ids (and an architecture, where the runtime gives one), a cache key such as
 * "llvmpipe (LLVM 15.0.6, 256 bits) 65541 0": shown without the ids, a software adapter as "llvmpipe (CPU)".
 */
export function adapterLabel(adapter: string): string {
  const id = "(?:0x[0-9a-f]+|\\d+)";
  const name = adapter.trim().replace(new RegExp(`\\s+${id}(?:\\s+[a-z][\\w-]*)?\\s+${id}$`, "i"), "");
  if (name === "") return adapter;
  return CPU_ADAPTER.test(name) ? `${name.split(/[\s(]/)[0]} (CPU)` : name;
}

/** "[92.0, 95.0] %": a share's 95 % interval in percent (a recall's on the World and Models pages). */
export function percentInterval(ci: { lo: number; hi: number } | null | undefined): string | null {
  return ci ? `[${(100 * ci.lo).toFixed(1)}, ${(100 * ci.hi).toFixed(1)}]\u00a0%` : null;
}
