/**
 * Curve controls for any chart of training curves: smoothing (time-weighted EMA, the raw curve kept faint
 * behind), log y, the x axis (steps, examples seen, wall time where the runs record what that needs) and a
 * cap on points per curve that keeps extremes. `applyCurveSettings` turns one run's series into what the
 * chart draws; the transforms themselves are web/lib/curve-transforms.ts.
 */
import {
  downsampleExtremes,
  emaSmooth,
  type RunPace,
  stepToX,
  type XAxis,
  type XY,
} from "../lib/curve-transforms.ts";

export interface CurveSettings {
  /** EMA weight in [0, 1): 0 draws the raw curve. */
  smoothing: number;
  logY: boolean;
  xAxis: XAxis;
  /** Points per curve after downsampling. */
  maxPoints: number;
}

export const DEFAULT_CURVE_SETTINGS: CurveSettings = {
  smoothing: 0,
  logY: false,
  xAxis: "step",
  maxPoints: 500,
};

export const X_AXIS_LABELS: Record<XAxis, string> = {
  step: "step",
  examples: "examples seen",
  seconds: "wall time (s, ≈ even pace)",
};

/** One run's curve as drawn: x on the chosen axis, downsampled, smoothed (raw kept when smoothing). */
export function applyCurveSettings(
  steps: { step: number; value: number }[],
  pace: RunPace,
  settings: CurveSettings,
): { points: XY[]; raw?: XY[] } | null {
  const onAxis: XY[] = [];
  for (const p of steps) {
    const x = stepToX(p.step, settings.xAxis, pace);
    if (x === null) return null;
    onAxis.push({ x, y: p.value });
  }
  const raw = downsampleExtremes(onAxis, settings.maxPoints);
  if (settings.smoothing === 0) return { points: raw };
  // Smoothing runs over every point, then keeps the x values the raw curve kept.
  const smoothed = emaSmooth(onAxis, settings.smoothing);
  const keep = new Set(raw.map((p) => p.x));
  return { points: smoothed.filter((p) => keep.has(p.x)), raw };
}

/** Which x axes every run in view can be drawn against. */
export function availableAxes(paces: RunPace[]): XAxis[] {
  return (["step", "examples", "seconds"] as XAxis[]).filter((axis) =>
    paces.every((pace) => stepToX(1, axis, pace) !== null)
  );
}

export function CurveControls(
  { settings, onChange, axes }: {
    settings: CurveSettings;
    onChange: (next: CurveSettings) => void;
    axes: XAxis[];
  },
) {
  const set = (patch: Partial<CurveSettings>) => onChange({ ...settings, ...patch });
  return (
    <div class="curve-controls" role="group" aria-label="Curve controls">
      <label>
        Smoothing <output>{settings.smoothing.toFixed(2)}</output>
        <input
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={settings.smoothing}
          aria-label="Smoothing (EMA weight)"
          onInput={(e) => set({ smoothing: Number((e.target as HTMLInputElement).value) })}
        />
      </label>
      <label>
        <input
          type="checkbox"
          checked={settings.logY}
          onChange={(e) => set({ logY: (e.target as HTMLInputElement).checked })}
        />{" "}
        log y
      </label>
      <label>
        x axis{" "}
        <select
          value={settings.xAxis}
          onChange={(e) => set({ xAxis: (e.target as HTMLSelectElement).value as XAxis })}
        >
          {(["step", "examples", "seconds"] as XAxis[]).map((axis) => (
            <option key={axis} value={axis} disabled={!axes.includes(axis)}>
              {X_AXIS_LABELS[axis]}
              {axes.includes(axis) ? "" : " (not recorded)"}
            </option>
          ))}
        </select>
      </label>
      <label>
        points per curve{" "}
        <select
          value={String(settings.maxPoints)}
          onChange={(e) => set({ maxPoints: Number((e.target as HTMLSelectElement).value) })}
        >
          {[100, 250, 500, 2000].map((n) => <option key={n} value={String(n)}>{n}</option>)}
        </select>
      </label>
    </div>
  );
}
