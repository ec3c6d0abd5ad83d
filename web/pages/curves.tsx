/**
 * Training curves: a run's loss and accuracy series, reloaded live while its job runs, with the
 * early-stopping point (best test accuracy) marked and compared with the final point.
 */
import { useState } from "preact/hooks";
import { METRIC_SERIES } from "../../server/contract/series.ts";
import { alignSeries, Chart, type ChartMarker, type ChartStepLine } from "../components/chart.tsx";
import {
  EmptyState,
  ErrorBox,
  Loading,
  LoadMore,
  PageHeader,
  Section,
  ShowAll,
  StatusBadge,
  useCap,
} from "../components/ui.tsx";
import { formatDuration, formatTime, PALETTE } from "../lib/format.ts";
import { liveJobs, runCue, statusVersion } from "../lib/live.ts";
import { usePagedList, useResource } from "../lib/resource.ts";
import { runMatches } from "../lib/run-table.ts";
import { seriesKind, testAccuracySeries } from "../lib/series.ts";
import type { RunMetrics, SeriesPoint } from "../../server/contract/series.ts";
import type { Run } from "../lib/types.ts";

/** A checkpoint the results read this run at, marked on its curves. */
export interface CheckpointReading {
  step: number;
  checkpoint: "final" | "selected";
}

/** The colour of the final-checkpoint line (tests look for its pixels). */
export const CHECKPOINT_COLOUR = "#1f2933";

/** Each checkpoint in words, and as the short label of its line on the curves. */
const CHECKPOINT_NAMES: Record<CheckpointReading["checkpoint"], { text: string; line: string }> = {
  final: { text: "the final checkpoint, the headline reading", line: "final (headline)" },
  selected: { text: "the best validation point", line: "best on validation" },
};

/** Series after the first get dashes, so series with the same values (validation = test) stay visible. */
const SERIES_DASHES: Array<number[] | undefined> = [undefined, [8, 4], [2, 3], [10, 3, 2, 3]];

export interface EarlyStop {
  series: string;
  best: SeriesPoint;
  final: SeriesPoint;
}

/** The test-accuracy series (or, failing that, the only accuracy series) and its best and final points. */
export function findEarlyStop(series: RunMetrics["series"]): EarlyStop | undefined {
  const name = testAccuracySeries(Object.keys(series));
  const points = name ? series[name].points : [];
  if (!name || points.length === 0) return undefined;
  let best = points[0];
  for (const p of points) if (p.value > best.value) best = p;
  return { series: name, best, final: points[points.length - 1] };
}

/**
 * Legend names of the loss and accuracy series. A student's validation score is agreement with its supervisor's
 * labels, not accuracy: its legend says so. (Chance is drawn at 0.5, the balanced tasks' rate.)
 */
const SERIES_LABELS: Record<string, string> = {
  [METRIC_SERIES.trainLoss]: "training loss",
  [METRIC_SERIES.valLoss]: "validation loss",
  [METRIC_SERIES.valAcc]: "validation accuracy (ground truth)",
  [METRIC_SERIES.valAgreement]: "validation agreement with the supervisor's labels",
  [METRIC_SERIES.testAcc]: "test accuracy (ground truth)",
};

const SCHEDULE_TITLES: Record<string, string> = {
  [METRIC_SERIES.lr]: "Learning rate",
  [METRIC_SERIES.alpha]: "Aux-loss weight α",
};

function isRunLive(run: Run | undefined): boolean {
  if (!run) return false;
  const live = run.jobId !== null ? liveJobs.value.get(run.jobId) : undefined;
  return run.status === "running" || live?.status === "running" || live?.status === "queued";
}

/** The best and (when it differs) the final point of the test-accuracy curve, as labelled markers. */
function earlyStopMarkers(stop: EarlyStop | undefined): ChartMarker[] {
  return stop
    ? [
      {
        x: stop.best.step,
        y: stop.best.value,
        label: `best ${stop.best.value.toFixed(3)} @ ${stop.best.step}`,
        color: "#2ca02c",
      },
      ...(stop.final.step !== stop.best.step
        ? [{
          x: stop.final.step,
          y: stop.final.value,
          label: `final ${stop.final.value.toFixed(3)} @ ${stop.final.step}`,
          color: "#d62728",
        }]
        : []),
    ]
    : [];
}

/** The checkpoints as labelled vertical lines on every curve of the run. */
function checkpointLines(readings: CheckpointReading[]): ChartStepLine[] {
  return readings.map((r) => ({
    x: r.step,
    label: `${CHECKPOINT_NAMES[r.checkpoint].line} @ ${r.step}`,
    color: r.checkpoint === "final" ? CHECKPOINT_COLOUR : "#8a5a00",
  }));
}

/** Which checkpoints the results read a run at, in words, beside the dashed lines that mark them. */
function CheckpointNote({ readings, role }: { readings: CheckpointReading[]; role: string }) {
  if (readings.length === 0) return null;
  return (
    <p class="small" data-testid="checkpoint-readings">
      The results read this run at {readings.map((r, i) => (
        <span key={r.checkpoint}>
          {i > 0 && "; "}
          <strong>step {r.step}</strong>: {CHECKPOINT_NAMES[r.checkpoint].text}
        </span>
      ))}
      {role === "student" &&
        ". A student's validation score is agreement with its weak supervisor's labels, not accuracy"}
      . Dashed vertical lines mark {readings.length === 1 ? "it" : "them"} on the curves.
    </p>
  );
}

export function RunCurves(
  { runId, compact = false, readings = [], chance }: {
    runId: number;
    compact?: boolean;
    /** The checkpoints the experiment's results read this run at (none outside an experiment). */
    readings?: CheckpointReading[];
    /** Chance accuracy, drawn on the accuracy chart where known (runChance); no line otherwise. */
    chance?: number;
  },
) {
  const run = useResource<Run & { metricNames: string[] }>(`/runs/${runId}`, statusVersion.value);
  const live = isRunLive(run.data);
  // While the run trains, live events about this run are a cue to reload its series (at most once a second).
  const metrics = useResource<RunMetrics>(
    `/runs/${runId}/metrics?maxPoints=600`,
    live ? runCue(runId, run.data?.jobId ?? null) : statusVersion.value,
    1000,
  );
  if (run.error) return <ErrorBox message={run.error} onRetry={run.reload} />;
  if (metrics.error) return <ErrorBox message={metrics.error} onRetry={metrics.reload} />;
  if (!run.data || !metrics.data) return <Loading what={`run ${runId}`} />;
  const series = metrics.data.series;
  const names = Object.keys(series).sort();
  if (names.length === 0) {
    return (
      <EmptyState
        title={live ? "Waiting for the first metrics of this run…" : "This run recorded no metrics."}
      />
    );
  }
  const lossNames = names.filter((n) => seriesKind(n) === "loss");
  const accuracyNames = names.filter((n) => seriesKind(n) === "accuracy" || seriesKind(n) === "other");
  // A constant schedule (α = 0 without the aux loss, a probe student's single point) says nothing: not drawn.
  const scheduleNames = names.filter((n) =>
    seriesKind(n) === "schedule" && series[n].points.some((p) => p.value !== series[n].points[0].value)
  );
  const toList = (n: string) => series[n].points.map((p) => [p.step, p.value] as [number, number]);
  const stop = findEarlyStop(series);
  const markers = earlyStopMarkers(stop);
  const height = compact ? 220 : 280;
  const stepLines = checkpointLines(readings);
  return (
    <div class="run-curves" data-run-id={runId} data-live={live ? "yes" : "no"}>
      <p class="muted small">
        Run {runId} · {run.data.role} · {run.data.modelSize} ·{" "}
        <StatusBadge status={live ? "running" : run.data.status} />{" "}
        {run.data.seconds !== null && <>· {formatDuration(run.data.seconds)}</>} · started{" "}
        {formatTime(run.data.startedAt)}
        {live && <span class="live-dot" aria-label="updating live">live</span>}
      </p>
      {stop && (
        <p class="early-stop" data-testid="early-stop">
          Early stopping on {stop.series}: best <strong>{stop.best.value.toFixed(4)}</strong> at step{" "}
          {stop.best.step}; final <strong>{stop.final.value.toFixed(4)}</strong> at step {stop.final.step}
          {stop.final.step !== stop.best.step
            ? (
              <>
                {" — "}stopping early would have kept {(stop.best.value - stop.final.value).toFixed(4)} more.
              </>
            )
            : <>{" — "}the final point is the best.</>}
        </p>
      )}
      <CheckpointNote readings={readings} role={run.data.role} />
      <div class="chart-grid">
        {lossNames.length > 0 && (
          <Chart
            testId="loss-chart"
            title="Loss"
            xLabel="step"
            integerX
            yLabel="loss"
            height={height}
            data={alignSeries(lossNames.map(toList))}
            series={lossNames.map((n, i) => ({
              label: SERIES_LABELS[n] ?? n,
              color: PALETTE[i % PALETTE.length],
              dash: SERIES_DASHES[i % SERIES_DASHES.length],
              points: false,
            }))}
            steps={stepLines}
          />
        )}
        {accuracyNames.length > 0 && (
          <Chart
            testId="accuracy-chart"
            title="Accuracy"
            xLabel="step"
            integerX
            yLabel="accuracy"
            height={height}
            data={alignSeries(accuracyNames.map(toList))}
            series={accuracyNames.map((n, i) => ({
              label: SERIES_LABELS[n] ?? n,
              color: PALETTE[(i + 2) % PALETTE.length],
              dash: SERIES_DASHES[i % SERIES_DASHES.length],
              points: false,
            }))}
            markers={markers}
            steps={stepLines}
            chance={chance}
          />
        )}
        {/* One chart per schedule series: the learning rate and α live on scales 1000× apart. */}
        {scheduleNames.map((n, i) => (
          <Chart
            key={n}
            testId={`schedule-${n}`}
            title={SCHEDULE_TITLES[n] ?? n}
            xLabel="step"
            integerX
            yLabel={n}
            height={compact ? 160 : 200}
            data={alignSeries([toList(n)])}
            series={[{ label: n, color: PALETTE[(i + 5) % PALETTE.length], points: false }]}
          />
        ))}
      </div>
      {Object.values(series).some((s) => s.downsampled) && (
        <p class="muted small">Long series are shown as bucket means (at most 600 points).</p>
      )}
    </div>
  );
}

/**
 * Chips a long run list shows before "Show all": about three lines on a wide screen, half as many on a
 * phone (styles.css's phone width), where each takes a line.
 */
const pickerCap = () => matchMedia("(max-width: 760px)").matches ? 6 : 12;

/**
 * Runs as a list of links, the current one highlighted. A long list (a sweep's hundreds of runs) offers a
 * search and a role and a task to pick (`task` picked first, where a run has it), and shows the current run
 * and the first pickerCap() runs that match until "Show all": every run stays a search or a click away, and
 * the curves stay near the top.
 */
export function RunPicker(
  { runs, current, hrefOf, task = "" }: {
    runs: Run[];
    current?: number;
    hrefOf: (run: Run) => string;
    task?: string;
  },
) {
  const cap = pickerCap();
  const long = runs.length > cap;
  const [find, setFind] = useState({
    text: "",
    role: "",
    task: long && runs.some((r) => r.task === task) ? task : "",
  });
  const matches = runs.filter((r) =>
    (!find.role || r.role === find.role) && (!find.task || r.task === find.task) && runMatches(r, find.text)
  );
  const cut = useCap(matches, cap);
  const currentRun = runs.find((r) => r.id === current);
  const shown = currentRun && !cut.shown.includes(currentRun) ? [currentRun, ...cut.shown] : cut.shown;
  const values = (key: "role" | "task") =>
    [...new Set(runs.map((r) => r[key]).filter((v): v is string => !!v))].sort();
  return (
    <>
      {long && (
        <div class="runs-filters" data-testid="run-picker-filters">
          <label>
            Find{" "}
            <input
              type="search"
              placeholder="#id, name, task…"
              value={find.text}
              onInput={(e) => setFind({ ...find, text: (e.target as HTMLInputElement).value })}
            />
          </label>
          {(["role", "task"] as const).map((key) =>
            values(key).length > 1 && (
              <label key={key}>
                {key}{" "}
                <select
                  data-filter={key}
                  value={find[key]}
                  onChange={(e) => setFind({ ...find, [key]: (e.target as HTMLSelectElement).value })}
                >
                  <option value="">any</option>
                  {values(key).map((v) => <option key={v} value={v}>{v}</option>)}
                </select>
              </label>
            )
          )}
        </div>
      )}
      <nav class="run-picker" aria-label="Runs">
        {shown.map((r) => (
          <a
            key={r.id}
            href={hrefOf(r)}
            class={r.id === current ? "chip selected" : "chip"}
            aria-current={r.id === current ? "page" : undefined}
          >
            #{r.id} {r.name ?? `${r.role} · ${r.modelSize}`} <StatusBadge status={r.status} />
          </a>
        ))}
      </nav>
      {long && matches.length === 0 && <p class="muted">No run matches.</p>}
      <ShowAll cut={cut} what={find.text || find.role || find.task ? "matching runs" : "runs"} />
    </>
  );
}

export function CurvesPage({ runId }: { runId?: number }) {
  // Pages of 500: the picker searches every run loaded, which is every run of most labs.
  const runs = usePagedList<Run>("/runs", statusVersion.value, 500);
  const chosen = runId ?? runs.data?.[0]?.id;
  return (
    <>
      <PageHeader title="Training curves" />
      <Section title="Runs" id="runs">
        {runs.error && <ErrorBox message={runs.error} onRetry={runs.reload} />}
        {!runs.data && !runs.error && <Loading what="runs" />}
        {runs.data?.length === 0 && (
          <EmptyState title="No runs yet.">
            Runs appear when a job trains a model: start an experiment on the{" "}
            <a href="/experiments">Experiments</a> page or a demo job on the <a href="/jobs">Jobs</a> page.
          </EmptyState>
        )}
        {runs.data && runs.data.length > 0 && (
          <RunPicker
            runs={runs.data}
            current={chosen}
            hrefOf={(r) => `/runs/${r.id}`}
          />
        )}
        <LoadMore list={runs} what="runs" />
      </Section>
      {chosen !== undefined && (
        <Section title={`Run ${chosen}`} id="curves">
          <RunCurves runId={chosen} />
        </Section>
      )}
    </>
  );
}
