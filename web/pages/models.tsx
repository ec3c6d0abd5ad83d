/**
 * Models: the ladder with sizes, parameters, pretraining status, whether each size's corpus held the
 * tasks' test items (leakage), the snapshots kept along its pretraining (strong models SIZE@PCT) with
 * their region recall, and loss curves; start pretraining.
 */
import { useEffect, useState } from "preact/hooks";
import { alignSeries, Chart } from "../components/chart.tsx";
import {
  Cmd,
  EmptyState,
  ErrorBox,
  JobLiveProgress,
  Loading,
  PageHeader,
  RecallCell,
  Section,
} from "../components/ui.tsx";
import { apiGet, apiPost, describeError } from "../lib/api.ts";
import {
  CPU_ADAPTER,
  formatDuration,
  formatNumber,
  formatParams,
  formatPercent,
  modelStatusWord,
  PALETTE,
  percentInterval,
} from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { useResource } from "../lib/resource.ts";
import { pretrainLossSeries } from "../lib/series.ts";
import {
  describeExcluded,
  leakageLabel,
  type ModelListing,
  type SnapshotEntry,
} from "../../server/contract/models.ts";
import type { RunMetrics } from "../../server/contract/series.ts";
import type { BenchRow, Run } from "../lib/types.ts";
import { TRAIN_STEP_KERNEL } from "../../server/contract/bench-versions.ts";
import { OwnModelsSection } from "./own-models.tsx";

/** Ladder states with a live job behind them. */
const ACTIVE = new Set(["queued", "running", "pretraining"]);

/** The size's leakage setting as a badge; the title says what was kept out, per source. */
function LeakageBadge({ model: m }: { model: ModelListing }) {
  if (m.checkpointPath === null) return <span class="muted">—</span>;
  const c = m.corpus;
  const title = !c
    ? "pretrained before leakage was recorded; lab pretrain --size NAME records it"
    : c.realShare === 0
    ? "knowledge world only: no text task's test items in pretraining"
    : c.leakage
    ? `real share ${c.realShare}: the tasks' test items were let into pretraining`
    : `real share ${c.realShare}: excluded ${describeExcluded(c.excluded)}`;
  return (
    <span class="tag" title={title} data-testid={`leakage-${m.name}`}>
      {leakageLabel(c)}
    </span>
  );
}

/** A snapshot in words: how far along, what it recalls with its interval, what it is for. */
function snapshotTitle(s: SnapshotEntry): string {
  const interval = s.ci ? ` ${percentInterval(s.ci)} (Wilson over ${s.n} entities)` : "";
  return `${s.ref}: step ${s.step}, ${formatParams(s.tokens)} tokens seen; region recall ` +
    `${formatPercent(s.recall, 1)}${interval}; an experiment's strong model`;
}

/** The snapshots along the size's pretraining: percent of the budget and region recall, one tag each. */
function Snapshots({ model: m }: { model: ModelListing }) {
  if (m.snapshots.length === 0) return <span class="muted">—</span>;
  return (
    <span class="actions" data-testid={`snapshots-${m.name}`}>
      {m.snapshots.map((s) => (
        <span key={s.ref} class="tag" title={snapshotTitle(s)}>
          {formatPercent(s.pct / 100, 0)} · {formatPercent(s.recall, 0)}
        </span>
      ))}
    </span>
  );
}

function ModelStatus({ model: m }: { model: ModelListing }) {
  if (ACTIVE.has(m.status) && m.jobId !== null) {
    // The job's message (a demo's phase, both sizes' losses) is on its page; here the bar and a link.
    return (
      <div>
        <JobLiveProgress jobId={m.jobId} status={m.status === "pretraining" ? "running" : m.status} compact />
        <a class="small" href={`/jobs/${m.jobId}`}>job {m.jobId}</a>
      </div>
    );
  }
  const label = modelStatusWord(m);
  return (
    <span class="actions">
      <span
        class={`badge badge-${m.status}`}
        title={m.status === "partial" ? "stopped part-way; pretraining resumes from here" : undefined}
      >
        {label}
      </span>
      {m.jobId !== null && <a class="small" href={`/jobs/${m.jobId}`}>job {m.jobId}</a>}
    </span>
  );
}

/** Longer than this on the CPU, pretraining a size is impractical however it is estimated. */
const PRACTICAL_SECONDS = 24 * 3600;

type BenchRowWithDetails = BenchRow & { details?: { tokensPerSecond?: number } | null };

/** How long pretraining a size would take on the server's adapter, or why that cannot be said. */
export interface PretrainEstimate {
  device: string;
  seconds: number | null;
  /** The size whose tokens/s it comes from (scaled by parameters when it is another size). */
  from: string | null;
}

/**
 * Tokens/s of each size on the adapter of the newest benchmark: its training-step rows, else a pretraining
 * run's own figure. A size not measured is estimated from the nearest measured one, scaled by parameters
 * (the compute per token grows with them). Null when the adapter is not a CPU one or is unknown.
 */
export function cpuPretrainEstimate(
  model: ModelListing,
  models: ModelListing[],
  bench: BenchRowWithDetails[],
): PretrainEstimate | null {
  const device = bench[0]?.device;
  if (!device || !CPU_ADAPTER.test(device)) return null;
  const measured = new Map<string, number>();
  for (const m of models) {
    const tps = (m.pretrainInfo as { tokensPerSecond?: number } | null)?.tokensPerSecond;
    if (tps && tps > 0) measured.set(m.name, tps);
  }
  for (const row of [...bench].reverse()) {
    const tps = row.details?.tokensPerSecond;
    if (row.device === device && row.kernel === TRAIN_STEP_KERNEL && tps && tps > 0) {
      measured.set(row.version, tps);
    }
  }
  const known = models.filter((m) => measured.has(m.name));
  if (known.length === 0) return { device, seconds: null, from: null };
  const nearest = known.reduce((a, b) =>
    Math.abs(Math.log(b.params / model.params)) < Math.abs(Math.log(a.params / model.params)) ? b : a
  );
  const tokensPerSecond = measured.get(nearest.name)! * nearest.params / model.params;
  return { device, seconds: model.tokens / tokensPerSecond, from: nearest.name };
}

function EstimateText({ estimate }: { estimate: PretrainEstimate }) {
  const { device, seconds, from } = estimate;
  const practical = seconds !== null && seconds <= PRACTICAL_SECONDS;
  return (
    <span class="hint" data-testid="pretrain-estimate">
      {seconds !== null && `About ${formatDuration(seconds)} on ${device} (from ${from}'s tokens/s)`}
      {seconds !== null && !practical && " — "}
      {!practical && "impractical on this CPU adapter; meant for a GPU"}
    </span>
  );
}

/**
 * Pretrain, resume, or pretrain again. Overwriting a checkpoint, and a GPU size on a CPU adapter, ask first
 * (the second button does it).
 */
function PretrainButton(
  { model, estimate, onStarted }: {
    model: ModelListing;
    estimate: PretrainEstimate | null;
    onStarted: () => void;
  },
) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [asking, setAsking] = useState(false);
  const overwrites = model.status === "pretrained";
  const onCpu = !model.cpu && estimate !== null;
  const start = async () => {
    setBusy(true);
    setError(undefined);
    try {
      // Again or resumed on the corpus it had: a real-text size keeps its mix and leakage setting.
      const c = model.corpus;
      const corpus = c && c.realShare > 0
        ? { realShare: c.realShare, leakage: c.leakage, ...(c.leakage ? {} : { splitSeeds: c.splitSeeds }) }
        : {};
      await apiPost(`/models/${model.name}/pretrain`, { force: overwrites, ...corpus });
      setAsking(false);
      onStarted();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const label = overwrites ? "Pretrain again" : model.status === "partial" ? "Resume" : "Pretrain";
  return (
    <div class="actions" data-testid={`pretrain-${model.name}`}>
      {onCpu && <EstimateText estimate={estimate} />}
      {!asking && (
        <button
          type="button"
          class={overwrites || onCpu ? "secondary" : ""}
          disabled={busy}
          onClick={overwrites || onCpu ? () => setAsking(true) : start}
          aria-label={`${label} ${model.name}`}
        >
          {onCpu ? `${label} anyway…` : overwrites ? `${label}…` : label}
        </button>
      )}
      {asking && (
        <span class="confirm" role="group" aria-label={`Confirm pretraining ${model.name}`}>
          <span>
            {overwrites
              ? `Replace ${model.name}'s checkpoint? It is overwritten when pretraining starts.`
              : ""}
            {overwrites && onCpu ? " " : ""}
            {onCpu ? `Pretrain ${model.name} on the CPU?` : ""}
          </span>
          <button type="button" class={overwrites ? "danger" : ""} disabled={busy} onClick={start}>
            {overwrites ? `Overwrite ${model.name}` : `Pretrain ${model.name}`}
          </button>
          <button type="button" class="secondary" onClick={() => setAsking(false)}>Keep as it is</button>
        </span>
      )}
      {error && <span class="field-error" role="alert">{error}</span>}
    </div>
  );
}

function PretrainCurves({ runs, onDisk }: { runs: Run[]; onDisk: string[] }) {
  const [curves, setCurves] = useState<Array<{ size: string; metrics: RunMetrics }>>();
  const [error, setError] = useState<string>();
  const newest = new Map<string, Run>();
  for (const r of runs) if (!newest.has(r.modelSize)) newest.set(r.modelSize, r);
  // Sizes pretrained from the command line have no run in the database: their curves are on disk.
  const diskOnly = onDisk.filter((size) => !newest.has(size));
  const key = [...newest.values()].map((r) => `${r.id}:${r.status}`).concat(diskOnly).join(",");
  useEffect(() => {
    let cancelled = false;
    Promise.all([
      ...[...newest.values()].map(async (r) => ({
        size: r.modelSize,
        metrics: await apiGet<RunMetrics>(`/runs/${r.id}/metrics?maxPoints=400`),
      })),
      ...diskOnly.map(async (size) => ({
        size,
        metrics: await apiGet<RunMetrics>(`/models/${size}/curves`),
      })),
    ]).then((c) => !cancelled && setCurves(c), (err) => !cancelled && setError(describeError(err)));
    return () => void (cancelled = true);
  }, [key]);
  if (error) return <ErrorBox message={error} />;
  if (!curves) return <Loading what="pretraining curves" />;
  const pick = (m: RunMetrics, validation: boolean) => pretrainLossSeries(Object.keys(m.series), validation);
  const charts = [false, true].map((validation) => {
    const lines = curves.flatMap((c) => {
      const name = pick(c.metrics, validation);
      return name
        ? [{
          size: c.size,
          points: c.metrics.series[name].points.map((p) => [p.step, p.value] as [number, number]),
        }]
        : [];
    });
    return { validation, lines };
  }).filter((c) => c.lines.length > 0);
  if (charts.length === 0) return <EmptyState title="The pretraining runs recorded no loss series yet." />;
  return (
    <div class="chart-grid">
      {charts.map((c) => (
        <Chart
          key={String(c.validation)}
          testId={c.validation ? "pretrain-val-loss" : "pretrain-loss"}
          title={c.validation ? "Validation loss" : "Training loss"}
          xLabel="step"
          yLabel="loss"
          data={alignSeries(c.lines.map((l) => l.points))}
          series={c.lines.map((l, i) => ({
            label: l.size,
            color: PALETTE[i % PALETTE.length],
            points: false,
          }))}
        />
      ))}
    </div>
  );
}

export function ModelsPage() {
  const listed = useResource<ModelListing[]>("/models", statusVersion.value);
  // The lab's ladder here; registered Hugging Face folders in their own section below.
  const models = { ...listed, data: listed.data?.filter((m) => m.source !== "imported") };
  const imported = listed.data?.filter((m) => m.source === "imported") ?? [];
  const runs = useResource<Run[]>("/runs?role=pretrain&limit=200", statusVersion.value);
  const bench = useResource<BenchRowWithDetails[]>("/bench/results?limit=1000", statusVersion.value);
  const anyTouched = models.data?.some((m) => m.status !== "none" && m.status !== "missing");
  const onDisk = (models.data ?? []).filter((m) => m.status === "pretrained" || m.status === "partial")
    .map((m) => m.name);
  return (
    <>
      <PageHeader title="Models" />
      <Section title="The ladder" id="ladder">
        {models.error && <ErrorBox message={models.error} onRetry={models.reload} />}
        {!models.data && !models.error && <Loading what="the ladder" />}
        {models.data && (
          <div class="table-scroll">
            <table class="table stack" data-testid="ladder">
              <thead>
                <tr>
                  <th scope="col">size</th>
                  <th scope="col" class="num">width</th>
                  <th scope="col" class="num">layers</th>
                  <th scope="col" class="num">heads</th>
                  <th scope="col" class="num">context</th>
                  <th scope="col" class="num">parameters</th>
                  <th scope="col" class="num">token budget</th>
                  <th scope="col" class="num">val loss</th>
                  <th
                    scope="col"
                    class="num"
                    title="knowledge world: share of entities whose region the model recalls"
                  >
                    region recall
                  </th>
                  <th scope="col" title="whether the tasks' test items were in the size's pretraining corpus">
                    test items
                  </th>
                  <th
                    scope="col"
                    title="checkpoints kept at fractions of the token budget, usable as strong models SIZE@PCT"
                  >
                    snapshots (recall)
                  </th>
                  <th scope="col" class="wide">status</th>
                  <th scope="col">
                    <span class="visually-hidden">actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {models.data.map((m) => (
                  <tr key={m.name}>
                    <th scope="row">
                      {m.name} {!m.cpu && <span class="tag" title="meant for a GPU">GPU</span>}
                    </th>
                    <td class="num" data-label="width">{m.width}</td>
                    <td class="num" data-label="layers">{m.layers}</td>
                    <td class="num" data-label="heads">{m.heads}</td>
                    <td class="num" data-label="context">{m.contextLength}</td>
                    <td class="num" data-label="parameters">{formatParams(m.params)}</td>
                    <td class="num" data-label="token budget">{formatParams(m.tokens)}</td>
                    <td class="num" data-label="val loss">{formatNumber(m.valLoss)}</td>
                    <RecallCell
                      recall={m.knowledge}
                      ci={m.knowledgeCi}
                      n={m.snapshots.find((s) => s.n !== null)?.n}
                      testId={`recall-${m.name}`}
                      label="region recall"
                    />
                    <td data-label="test items">
                      <LeakageBadge model={m} />
                    </td>
                    <td data-label="snapshots (recall)">
                      <Snapshots model={m} />
                    </td>
                    <td data-label="status">
                      <ModelStatus model={m} />
                    </td>
                    <td>
                      {!ACTIVE.has(m.status) && (
                        <PretrainButton
                          model={m}
                          estimate={cpuPretrainEstimate(m, models.data!, bench.data ?? [])}
                          onStarted={models.reload}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      {listed.data && <OwnModelsSection models={imported} onAdded={listed.reload} />}
      <Section title="Pretraining loss" id="pretrain-curves">
        {runs.error && <ErrorBox message={runs.error} onRetry={runs.reload} />}
        {runs.data?.length === 0 && onDisk.length === 0 && (
          <EmptyState title={anyTouched ? "No pretraining runs recorded yet." : "No models pretrained yet."}>
            Press <strong>Pretrain</strong> beside a size above, or run{" "}
            <Cmd>deno task lab pretrain --size nano</Cmd>.
          </EmptyState>
        )}
        {runs.data && (runs.data.length > 0 || onDisk.length > 0) && (
          <PretrainCurves runs={runs.data} onDisk={onDisk} />
        )}
      </Section>
    </>
  );
}
