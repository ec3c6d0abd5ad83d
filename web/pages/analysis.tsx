/**
 * Cross-experiment views over every stored result: Results (figure 3, PGR bars, median PGR, exports),
 * Agreement (figure 8) and Saliency (probe accuracy per layer).
 */
import {
  AgreementCharts,
  MedianPgrTable,
  PgrBars,
  ResultsTable,
  SaliencyChart,
  tasksOf,
  useResultsSummary,
} from "../components/science.tsx";
import { Cmd, EmptyState, ErrorBox, Loading, PageHeader, Section } from "../components/ui.tsx";
import { statusVersion } from "../lib/live.ts";
import { useParamsBySize } from "../lib/params.ts";
import { useResource } from "../lib/resource.ts";
import { currentQuery, setQueryParam } from "../lib/router.ts";
import type { Experiment, ProbeRow, ResultRow } from "../lib/types.ts";
import { ExportButtons, Fig3WithControls } from "./experiment.tsx";

function TaskPicker({ tasks, current }: { tasks: string[]; current: string }) {
  return (
    <label>
      Task{" "}
      <select value={current} onChange={(e) => setQueryParam("task", (e.target as HTMLSelectElement).value)}>
        {tasks.map((t) => <option key={t} value={t}>{t}</option>)}
      </select>
    </label>
  );
}

const NO_RESULTS = (
  <EmptyState title="No results yet.">
    Results appear when an experiment or sweep finishes. Start one on the{" "}
    <a href="/experiments">Experiments</a> page, or run{" "}
    <Cmd>deno task lab sweep --tasks world-region --sizes nano,micro,small</Cmd>.
  </EmptyState>
);

function useResultsForTask() {
  const results = useResource<ResultRow[]>("/results?limit=1000", statusVersion.value);
  const tasks = tasksOf(results.data ?? []);
  const wanted = currentQuery.value.get("task") ?? "";
  const task = tasks.includes(wanted) ? wanted : tasks[0] ?? "";
  const rows = (results.data ?? []).filter((r) => (r.task ?? "?") === task);
  return { results, tasks, task, rows };
}

/** The API's summary of one task's results: PGR per pair and method. */
function SummaryBars({ task, params }: { task: string; params: ReadonlyMap<string, number> }) {
  const summary = useResultsSummary(`?task=${encodeURIComponent(task)}`, statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  return summary.data ? <PgrBars summary={summary.data} params={params} /> : <Loading what="PGR" />;
}

/** The API's median PGR over every stored result: per task × method and per method. */
function SummaryTable() {
  const summary = useResultsSummary("", statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  return summary.data ? <MedianPgrTable summary={summary.data} /> : <Loading what="median PGR" />;
}

export function ResultsPage() {
  const { results, tasks, task, rows } = useResultsForTask();
  const { params, compute } = useParamsBySize();
  return (
    <>
      <PageHeader title="Results">
        {tasks.length > 0 && <TaskPicker tasks={tasks} current={task} />}
        <ExportButtons query={task ? `?task=${encodeURIComponent(task)}` : ""} />
      </PageHeader>
      {results.error && <ErrorBox message={results.error} onRetry={results.reload} />}
      {!results.data && !results.error && <Loading what="results" />}
      {results.data?.length === 0 && NO_RESULTS}
      {rows.length > 0 && (
        <>
          <Section title={`Weak-to-strong across sizes — ${task}`} id="fig3">
            <Fig3WithControls rows={rows} params={params} compute={compute} />
          </Section>
          <div class="two-columns even">
            <Section title="Performance gap recovered per pair" id="pgr">
              <SummaryBars task={task} params={params} />
            </Section>
            <Section title="Median PGR (all tasks)" id="median">
              <SummaryTable />
            </Section>
          </div>
          <Section title={`All results for ${task}`} id="rows">
            <ResultsTable rows={rows} />
          </Section>
        </>
      )}
    </>
  );
}

export function AgreementPage() {
  const { results, tasks, task, rows } = useResultsForTask();
  const { params } = useParamsBySize();
  return (
    <>
      <PageHeader title="Agreement">
        {tasks.length > 0 && <TaskPicker tasks={tasks} current={task} />}
      </PageHeader>
      <p class="lede">
        How often the student's prediction equals its weak supervisor's on the test set — over all examples,
        where the supervisor is right and where it is wrong. High agreement where the supervisor is wrong
        means the student imitates its errors.
      </p>
      {results.error && <ErrorBox message={results.error} onRetry={results.reload} />}
      {!results.data && !results.error && <Loading what="results" />}
      {results.data?.length === 0 && NO_RESULTS}
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
          />
          <p>
            <a href={`/experiments/${chosen}`}>Open experiment {chosen}</a>
          </p>
        </Section>
      )}
    </>
  );
}
