/**
 * Cross-experiment views over every stored result: Results (figure 3, PGR bars, median PGR, PGR vs the
 * strong model's knowledge, exports), Agreement (figure 8) and Saliency (probe accuracy per layer).
 */
import { Chart, type ChartWhisker } from "../components/chart.tsx";
import {
  AgreementCharts,
  MedianPgrTable,
  PairwiseNote,
  PgrBars,
  ResultsTable,
  ResultWarnings,
  SaliencyChart,
  TaskPicker,
  tasksOf,
  useResultsSummary,
} from "../components/science.tsx";
import { Cmd, EmptyState, ErrorBox, Loading, PageHeader, Section } from "../components/ui.tsx";
import { methodColour } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { useParamsBySize } from "../lib/params.ts";
import { useResource } from "../lib/resource.ts";
import { currentQuery, setQueryParam } from "../lib/router.ts";
import { isPairwiseRow } from "../lib/task-format.ts";
import type { Experiment, ProbeRow, ResultRow } from "../lib/types.ts";
import type { TaskListing } from "../../server/contract/tasks.ts";
import { scopeToTask, sharedTestSize } from "../lib/result-groups.ts";
import { ExportButtons, Fig3WithControls } from "./experiment.tsx";

const NO_RESULTS = (
  <EmptyState title="No results yet.">
    Results appear when an experiment or sweep finishes. Start one on the{" "}
    <a href="/experiments">Experiments</a> page, or run{" "}
    <Cmd>deno task lab sweep --tasks world-region --sizes nano,micro,small</Cmd>.
  </EmptyState>
);

/** The settings of a task's results (contract settingsLabel): "" is the lab's defaults. */
function SettingsPicker({ settings, current }: { settings: string[]; current: string }) {
  return (
    <label>
      Settings{" "}
      <select
        value={current}
        onChange={(e) => setQueryParam("settings", (e.target as HTMLSelectElement).value)}
      >
        {settings.map((s) => <option key={s} value={s}>{s || "defaults"}</option>)}
      </select>
    </label>
  );
}

/**
 * One task's results, and of those one settings (experiments run with other settings are never drawn as
 * one point: the API's summary keeps them apart too); the defaults first where they are present.
 */
function useResultsForTask() {
  const results = useResource<ResultRow[]>("/results?limit=1000", statusVersion.value);
  // The lab's order of tasks (the world file's first: world-region), not the alphabet's (world-blood).
  const listed = useResource<TaskListing[]>("/tasks");
  const { tasks, task, rows: ofTask } = scopeToTask(
    results.data ?? [],
    currentQuery.value.get("task"),
    (listed.data ?? []).map((t) => t.name),
  );
  const settingsList = [...new Set(ofTask.map((r) => r.settings ?? ""))].sort();
  const wantedSettings = currentQuery.value.get("settings") ?? "";
  const settings = settingsList.includes(wantedSettings) ? wantedSettings : settingsList[0] ?? "";
  const rows = ofTask.filter((r) => (r.settings ?? "") === settings);
  const pairwise = tasksOf((results.data ?? []).filter(isPairwiseRow));
  const picker = settingsList.length > 1
    ? <SettingsPicker settings={settingsList} current={settings} />
    : null;
  return { results, tasks, pairwise, task, rows, settingsPicker: picker };
}

/** The API's summary of one task's results: PGR per pair and method. */
function SummaryBars(
  { task, params, rows }: { task: string; params: ReadonlyMap<string, number>; rows: ResultRow[] },
) {
  const summary = useResultsSummary(`?task=${encodeURIComponent(task)}`, statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  return summary.data
    ? <PgrBars summary={summary.data} params={params} rows={rows} />
    : <Loading what="PGR" />;
}

/** The API's median PGR over every stored result: per task × method and per method. */
function SummaryTable() {
  const summary = useResultsSummary("", statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  return summary.data ? <MedianPgrTable summary={summary.data} /> : <Loading what="median PGR" />;
}

/** The strong model's knowledge per strong reference ("medium@30"), from the results that record it. */
function strongKnowledgeOf(rows: ResultRow[]): Map<string, number> {
  const knowledge = new Map<string, number>();
  for (const r of rows) {
    const k = r.full?.strongKnowledge;
    if (r.strongSize && typeof k === "number" && Number.isFinite(k)) knowledge.set(r.strongSize, k);
  }
  return knowledge;
}

/** uPlot columns for a scatter: every point's own x (repeats allowed), each series valued at its points. */
function scatterColumns(series: Array<Array<[number, number]>>): (number | null)[][] {
  const points = series.flatMap((list, s) => list.map(([x, y]) => ({ s, x, y }))).sort((a, b) => a.x - b.x);
  return [points.map((p) => p.x), ...series.map((_, s) => points.map((p) => (p.s === s ? p.y : null)))];
}

/**
 * PGR against how much the strong model knows (region recall of its checkpoint: a snapshot along
 * pretraining or the final model): one point per (weak, strong, method) cell of the API's summary, one
 * colour per weak model and method, with the t-interval over seeds as whiskers as on the PGR bars.
 */
function PgrVsKnowledge({ task, knowledge }: { task: string; knowledge: ReadonlyMap<string, number> }) {
  const summary = useResultsSummary(`?task=${encodeURIComponent(task)}`, statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  if (!summary.data) return <Loading what="PGR" />;
  const cells = summary.data.cells.filter((c) =>
    knowledge.has(c.strong) && !c.gap_too_small && Number.isFinite(c.pgr)
  );
  if (cells.length === 0) {
    return (
      <EmptyState title="Every pair with a recorded strong-model knowledge has a gap too small for PGR." />
    );
  }
  const groups = [...new Set(cells.map((c) => `${c.weak} · ${c.method}`))];
  // Colour means method here as on the PGR bars (sizes take PALETTE on this page's figure 3).
  const colorOf = (group: string) => methodColour(group.split(" · ")[1]);
  const whiskers: ChartWhisker[] = cells.filter((c) =>
    Number.isFinite(c.pgr_ci.lo) && c.pgr_ci.hi > c.pgr_ci.lo
  )
    .map((c) => ({
      x: knowledge.get(c.strong)!,
      lo: c.pgr_ci.lo,
      hi: c.pgr_ci.hi,
      color: colorOf(`${c.weak} · ${c.method}`),
    }));
  const ends = [...cells.map((c) => c.pgr), ...whiskers.flatMap((w) => [w.lo, w.hi])];
  const points = groups.map((group) =>
    cells.filter((c) => `${c.weak} · ${c.method}` === group).map((c) =>
      [knowledge.get(c.strong)!, c.pgr] as [number, number]
    )
  );
  return (
    <Chart
      testId="pgr-vs-knowledge"
      title={`PGR vs strong model's knowledge — ${task}`}
      xLabel="strong model's region recall"
      yLabel="PGR"
      data={scatterColumns(points)}
      series={groups.map((group) => ({ label: group, color: colorOf(group), width: 0 }))}
      whiskers={whiskers}
      xRange={[0, 1]}
      yRange={[Math.min(0, ...ends) - 0.05, Math.max(1, ...ends) + 0.05]}
      summary={cells.map((c) =>
        `${c.weak}→${c.strong} (${c.method}): recall ${knowledge.get(c.strong)!.toFixed(3)}, PGR ${
          c.pgr.toFixed(2)
        }`
      ).join("; ")}
    />
  );
}

export function ResultsPage() {
  const { results, tasks, pairwise, task, rows, settingsPicker } = useResultsForTask();
  const { params, compute } = useParamsBySize();
  // Which experiments are sweeps: their rows link to the sweep's page.
  const sweeps = useResource<Experiment[]>("/sweeps?limit=1000", statusVersion.value);
  const sweepIds = new Set((sweeps.data ?? []).map((s) => s.id));
  const taskQuery = `?task=${encodeURIComponent(task)}`;
  const knowledge = strongKnowledgeOf(rows);
  return (
    <>
      <PageHeader title="Results">
        {tasks.length > 0 && <TaskPicker tasks={tasks} pairwise={pairwise} current={task} />}
        {settingsPicker}
        <ExportButtons query={task ? `?task=${encodeURIComponent(task)}` : ""} />
      </PageHeader>
      {results.error && <ErrorBox message={results.error} onRetry={results.reload} />}
      {!results.data && !results.error && <Loading what="results" />}
      {results.data?.length === 0 && NO_RESULTS}
      {rows.length > 0 && (
        <>
          <PairwiseNote rows={rows} />
          <ResultWarnings rows={rows} />
          <Section title={`Weak-to-strong across sizes — ${task}`} id="fig3">
            <Fig3WithControls rows={rows} params={params} compute={compute} summaryQuery={taskQuery} />
          </Section>
          <div class="two-columns even">
            <Section title="Performance gap recovered per pair" id="pgr">
              <SummaryBars task={task} params={params} rows={rows} />
            </Section>
            <Section title="Median PGR (all tasks)" id="median">
              <SummaryTable />
            </Section>
          </div>
          {knowledge.size > 0 && (
            <Section title="PGR vs strong model's knowledge" id="pgr-knowledge">
              <p class="lede">
                Strong models taken along pretraining (snapshots such as{" "}
                <Cmd>--strong medium@30</Cmd>): does PGR change with how much the strong model knows? x: the
                strong checkpoint's region recall; whisker: 95 % t-interval over seeds; gaps too small are
                left out.
              </p>
              <PgrVsKnowledge task={task} knowledge={knowledge} />
            </Section>
          )}
          <Section title={`All results for ${task}`} id="rows">
            <ResultsTable rows={rows} sweepIds={sweepIds} />
          </Section>
        </>
      )}
    </>
  );
}

export function AgreementPage() {
  const { results, tasks, pairwise, task, rows, settingsPicker } = useResultsForTask();
  const { params } = useParamsBySize();
  return (
    <>
      <PageHeader title="Agreement">
        {tasks.length > 0 && <TaskPicker tasks={tasks} pairwise={pairwise} current={task} />}
        {settingsPicker}
      </PageHeader>
      <p class="lede">
        How often the student's prediction equals its weak supervisor's on the test set — over all examples,
        where the supervisor is right and where it is wrong. High agreement where the supervisor is wrong
        means the student imitates its errors.
      </p>
      {results.error && <ErrorBox message={results.error} onRetry={results.reload} />}
      {!results.data && !results.error && <Loading what="results" />}
      {results.data?.length === 0 && NO_RESULTS}
      <PairwiseNote rows={rows} />
      {rows.length > 0 && (
        <Section title={`Student–supervisor agreement vs student size — ${task}`} id="agreement">
          <AgreementCharts rows={rows} params={params} />
        </Section>
      )}
    </>
  );
}

export function SaliencyPage() {
  const probes = useResource<ProbeRow[]>("/probes?limit=1000", statusVersion.value);
  const experiments = useResource<Experiment[]>("/experiments?limit=500", statusVersion.value);
  const ids = [
    ...new Set((probes.data ?? []).map((p) => p.experimentId).filter((id): id is number => id !== null)),
  ]
    .sort((a, b) => b - a);
  const wanted = Number(currentQuery.value.get("experiment"));
  const chosen = ids.includes(wanted) ? wanted : ids[0];
  // Its results give the test set's size: each probe's Wilson interval.
  const chosenResults = useResource<ResultRow[]>(
    chosen === undefined ? null : `/results?experimentId=${chosen}&limit=1000`,
    statusVersion.value,
  );
  const describe = (id: number) => {
    const e = experiments.data?.find((x) => x.id === id);
    const c = (e?.config ?? {}) as Record<string, unknown>;
    return e ? `#${id} ${c.task} ${c.weak}→${c.strong} ${c.method ?? ""}` : `#${id}`;
  };
  return (
    <>
      <PageHeader title="Saliency">
        {ids.length > 0 && (
          <label>
            Experiment{" "}
            <select
              value={String(chosen)}
              onChange={(e) => setQueryParam("experiment", (e.target as HTMLSelectElement).value)}
            >
              {ids.map((id) => <option key={id} value={String(id)}>{describe(id)}</option>)}
            </select>
          </label>
        )}
      </PageHeader>
      <p class="lede">
        Linear probes on frozen per-layer features: trained on weak labels lp(weak), on ground truth lp(GT),
        on ground truth after finetuning on weak labels ft(weak)+lp(GT), and the fully finetuned model ft(GT).
      </p>
      {probes.error && <ErrorBox message={probes.error} onRetry={probes.reload} />}
      {!probes.data && !probes.error && <Loading what="probe results" />}
      {probes.data?.length === 0 && (
        <EmptyState title="No probe results yet.">
          Start an experiment with "linear probes per layer" ticked on the{" "}
          <a href="/experiments">Experiments</a> page, or add <Cmd>--probes</Cmd> to{" "}
          <Cmd>deno task lab w2s</Cmd>.
        </EmptyState>
      )}
      {chosen !== undefined && probes.data && (
        <Section title={`Probe accuracy per layer — experiment ${chosen}`} id="saliency">
          <SaliencyChart
            probes={probes.data.filter((p) =>
              p.experimentId === chosen
            )}
            nTest={sharedTestSize(chosenResults.data ?? [])}
          />
          <p>
            <a href={`/experiments/${chosen}`}>Open experiment {chosen}</a>
          </p>
        </Section>
      )}
    </>
  );
}
