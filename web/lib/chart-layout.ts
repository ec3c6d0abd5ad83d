/**
 * Where the charts (components/chart.tsx) put the text they draw on their canvas: labels moved clear of
 * each other and kept inside the plot area, and which ticks of a log axis carry a label at the room the
 * axis has, and the range of an axis of shares. Pure functions of boxes and widths, in canvas pixels.
 */

/** A rectangle on the canvas. */
export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export function overlaps(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/**
 * Where a label of `width` × `height` goes: its top-left corner at `at`, moved sideways to lie inside
 * `bounds`, then up or down to the nearest height that overlaps none of `taken` (up on a tie). Where no
 * height inside `bounds` is free, it stays at `at` (inside `bounds`).
 */
export function placeLabel(
  at: { x: number; y: number },
  size: { width: number; height: number },
  taken: readonly Box[],
  bounds: Box,
): Box {
  const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
  const left = clamp(at.x, bounds.left, bounds.right - size.width);
  const top = clamp(at.y, bounds.top, bounds.bottom - size.height);
  const box = (y: number): Box => ({ left, top: y, right: left + size.width, bottom: y + size.height });
  const free = (b: Box) =>
    b.top >= bounds.top && b.bottom <= bounds.bottom && !taken.some((t) => overlaps(t, b));
  for (let shift = 0; shift <= bounds.bottom - bounds.top; shift++) {
    for (const sign of [-1, 1]) {
      const candidate = box(top + sign * shift);
      if (free(candidate)) return candidate;
    }
  }
  return box(top);
}

/**
 * Which ticks of a log axis carry a label, at `pxPerDecade` pixels per power of ten and `labelPx` pixels
 * that one label needs: 1, 2 and 5 times each power where they fit, else the powers of ten, else every
 * second (third, …) power. The ticks left out keep their grid line and get "".
 */
export function logTickLabels(
  splits: readonly (number | null)[],
  pxPerDecade: number,
  labelPx: number,
  format: (v: number) => string,
): string[] {
  // 2 → 5 is the narrowest gap of the 1-2-5 ticks: log10(5 / 2) ≈ 0.4 of a decade; 1 → 2 is 0.3.
  const mantissas = pxPerDecade * Math.log10(2) >= labelPx ? [1, 2, 5] : [1];
  const everyNth = pxPerDecade >= labelPx ? 1 : Math.ceil(labelPx / Math.max(pxPerDecade, 1e-9));
  return splits.map((v) => {
    if (v === null || !(v > 0)) return "";
    const exponent = Math.floor(Math.log10(v) + 1e-9);
    const mantissa = Math.round(v / 10 ** exponent);
    const labelled = mantissas.includes(mantissa) && (mantissa !== 1 || exponent % everyNth === 0);
    return labelled ? format(v) : "";
  });
}

/**
 * The range of an axis whose values are shares (accuracy, recall): their ends widened by `pad`, rounded out
 * to a multiple of 0.05 and kept within 0–1.
 */
export function shareRange(values: number[], pad = 0.02): [number, number] {
  const lo = Math.max(0, Math.floor((Math.min(...values) - pad) * 20) / 20);
  const hi = Math.min(1, Math.ceil((Math.max(...values) + pad) * 20) / 20);
  return [lo, hi];
}
