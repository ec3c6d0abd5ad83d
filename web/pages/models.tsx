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
  Section,
} from "../components/ui.tsx";
import { apiGet, apiPost, describeError } from "../lib/api.ts";
import { formatNumber, formatParams, formatPercent, PALETTE } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { useResource } from "../lib/resource.ts";
import { pretrainLossSeries } from "../lib/series.ts";
import { describeExcluded, leakageLabel, type ModelListing } from "../../server/contract/models.ts";
import type { RunMetrics } from "../../server/contract/series.ts";
import type { Run } from "../lib/types.ts";

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

/** The snapshots along the size's pretraining: percent of the budget and region recall, one tag each. */
function Snapshots({ model: m }: { model: ModelListing }) {
  if (m.snapshots.length === 0) return <span class="muted">—</span>;
  return (
    <span class="actions" data-testid={`snapshots-${m.name}`}>
      {m.snapshots.map((s) => (
        <span
          key={s.ref}
          class="tag"
          title={`${s.ref}: step ${s.step}, ${
            formatParams(s.tokens)
          } tokens seen; an experiment's strong model`}
        >
          {s.pct} % · {formatPercent(s.recall, 0)}
        </span>
      ))}
    </span>
  );
}

function ModelStatus({ model: m }: { model: ModelListing }) {
  if (ACTIVE.has(m.status) && m.jobId !== null) {
    return <JobLiveProgress jobId={m.jobId} status={m.status === "pretraining" ? "running" : m.status} />;
  }
  const label = m.status === "missing" || m.status === "none"
    ? "not pretrained"
    : m.status === "partial" && m.step && m.totalSteps
    ? `partial ${Math.round((100 * m.step) / m.totalSteps)} %`
    : m.status;
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

function PretrainButton({ model, onStarted }: { model: ModelListing; onStarted: () => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    setError(undefined);
    try {
      // Again or resumed on the corpus it had: a real-text size keeps its mix and leakage setting.
      const c = model.corpus;
      const corpus = c && c.realShare > 0
        ? { realShare: c.realShare, leakage: c.leakage, ...(c.leakage ? {} : { splitSeeds: c.splitSeeds }) }
        : {};
      await apiPost(`/models/${model.name}/pretrain`, { force: model.status === "pretrained", ...corpus });
      onStarted();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="actions">
      <button
        type="button"
        class={model.status === "pretrained" ? "secondary" : ""}
        disabled={busy}
        onClick={start}
        aria-label={`Pretrain ${model.name}`}
      >
        {model.status === "pretrained"
          ? "Pretrain again"
          : model.status === "partial"
          ? "Resume"
          : "Pretrain"}
      </button>
      {error && <span class="field-error" role="alert">{error}</span>}
    </div>
  );
}

/** Loss curves of the newest pretraining run of each size, on one chart (training and validation). */
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
  const models = useResource<ModelListing[]>("/models", statusVersion.value);
  const runs = useResource<Run[]>("/runs?role=pretrain&limit=200", statusVersion.value);
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
            <table class="table" data-testid="ladder">
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
                    <td class="num">{m.width}</td>
                    <td class="num">{m.layers}</td>
                    <td class="num">{m.heads}</td>
                    <td class="num">{m.contextLength}</td>
                    <td class="num">{formatParams(m.params)}</td>
                    <td class="num">{formatParams(m.tokens)}</td>
                    <td class="num">{formatNumber(m.valLoss)}</td>
                    <td class="num">{formatPercent(m.knowledge, 0)}</td>
                    <td>
                      <LeakageBadge model={m} />
                    </td>
                    <td>
                      <Snapshots model={m} />
                    </td>
                    <td>
                      <ModelStatus model={m} />
                    </td>
                    <td>
                      {!ACTIVE.has(m.status) && <PretrainButton model={m} onStarted={models.reload} />}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
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
