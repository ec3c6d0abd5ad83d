/**
 * Cross-experiment views over every stored result: Results (figure 3, PGR bars, median PGR, PGR vs the
 * strong model's knowledge, exports), Agreement (figure 8) and Saliency (probe accuracy per layer).
 */
import {
  MedianPgrTable,
  PairwiseNote,
  PgrBars,
  PgrVsKnowledge,
  ResultsTable,
  ResultWarnings,
  SaliencyChart,
  strongKnowledgeOf,
  TaskPicker,
  tasksOf,
  useResultsSummary,
} from "../components/science.tsx";
import { Cmd, EmptyState, ErrorBox, Loading, PageHeader, Section } from "../components/ui.tsx";
import { statusVersion } from "../lib/live.ts";
import { useParamsBySize } from "../lib/params.ts";
import { useAllRows, useResource } from "../lib/resource.ts";
import { currentQuery, setQueryParam } from "../lib/router.ts";
import { isPairwiseRow } from "../lib/task-format.ts";
import type { Experiment, ProbeRow, ResultRow } from "../lib/types.ts";
import type { ComponentChildren } from "preact";
import type { ResultsSummary } from "../../server/contract/results.ts";
import type { TaskListing } from "../../server/contract/tasks.ts";
import { scopeToTask, sharedTestSize } from "../lib/result-groups.ts";
import { AgreementWithIntervals, ExportButtons, Fig3WithControls } from "./experiment.tsx";

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
  const results = useAllRows<ResultRow>("/results", statusVersion.value);
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

/** A view of the API's summary of one task's results (PGR per pair and method), once it has loaded. */
function TaskSummary(
  { task, view }: { task: string; view: (summary: ResultsSummary) => ComponentChildren },
) {
  const summary = useResultsSummary(`?task=${encodeURIComponent(task)}`, statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  return summary.data ? <>{view(summary.data)}</> : <Loading what="PGR" />;
}

/** The API's median PGR over every stored result: per task × method and per method. */
function SummaryTable() {
  const summary = useResultsSummary("", statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  return summary.data ? <MedianPgrTable summary={summary.data} /> : <Loading what="median PGR" />;
}

export function ResultsPage() {
  const { results, tasks, pairwise, task, rows, settingsPicker } = useResultsForTask();
  const { params, compute } = useParamsBySize();
  // Which experiments are sweeps: their rows link to the sweep's page.
  const sweeps = useAllRows<Experiment>("/sweeps", statusVersion.value);
  const sweepIds = new Set((sweeps.data ?? []).map((s) => s.id));
  const taskQuery = `?task=${encodeURIComponent(task)}`;
  const knowledge = strongKnowledgeOf(rows).size > 0;
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
              <TaskSummary
                task={task}
                view={(summary) => <PgrBars summary={summary} params={params} rows={rows} />}
              />
            </Section>
            <Section title="Median PGR (all tasks)" id="median">
              <SummaryTable />
            </Section>
          </div>
          {knowledge && (
            <Section title="PGR vs strong model's knowledge" id="pgr-knowledge">
              <p class="lede">
                Strong models taken along pretraining (snapshots such as{" "}
                <Cmd>--strong medium@30</Cmd>): does PGR change with how much the strong model knows? x: the
                strong checkpoint's region recall; whisker: 95&nbsp;% interval (t over seeds; one seed: over
                test examples); gaps too small are left out.
              </p>
              <TaskSummary
                task={task}
                view={(summary) => (
                  <PgrVsKnowledge task={task} summary={summary} rows={rows} params={params} />
                )}
              />
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
          <AgreementWithIntervals
            rows={rows}
            params={params}
            summaryQuery={`?task=${encodeURIComponent(task)}`}
          />
        </Section>
      )}
    </>
  );
}

export function SaliencyPage() {
  const probes = useAllRows<ProbeRow>("/probes", statusVersion.value);
  const experiments = useAllRows<Experiment>("/experiments", statusVersion.value);
  const ids = [
    ...new Set((probes.data ?? []).map((p) => p.experimentId).filter((id): id is number => id !== null)),
  ]
    .sort((a, b) => b - a);
  const wanted = Number(currentQuery.value.get("experiment"));
  const chosen = ids.includes(wanted) ? wanted : ids[0];
  // Its results give the test set's size: each probe's Wilson interval.
  const chosenResults = useAllRows<ResultRow>(
    chosen === undefined ? null : `/results?experimentId=${chosen}`,
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
