/**
 * One experiment or sweep: its live status, the figure-3 plot, PGR bars, the median-PGR table, exports,
 * training curves of its runs, agreement and probe saliency. URL: /experiments/:id or /sweeps/:id
 * (?run=N picks the run whose curves are shown; on a sweep of several tasks ?task=NAME picks the task
 * whose figures are shown, the first of the sweep's tasks by default, and the task the run picker lists).
 */
import { useState } from "preact/hooks";
import {
  AccuracyVsSizePlot,
  AgreementCharts,
  MedianPgrTable,
  methodsOf,
  PairwiseNote,
  PgrBars,
  ResultsTable,
  ResultWarnings,
  SaliencyChart,
  TaskPicker,
  tasksOf,
  useResultsSummary,
} from "../components/science.tsx";
import {
  Cmd,
  EmptyState,
  ErrorBox,
  JobLiveProgress,
  Loading,
  PageHeader,
  Section,
} from "../components/ui.tsx";
import { formatTime, readableKey } from "../lib/format.ts";
import { liveJobs, statusVersion } from "../lib/live.ts";
import { useParamsBySize } from "../lib/params.ts";
import { useAllRows, useResource } from "../lib/resource.ts";
import { checkpointReadings, runChance, scopeToTask, sharedTestSize } from "../lib/result-groups.ts";
import { currentQuery, experimentPath, queryWith, setQueryParam } from "../lib/router.ts";
import { isPairwiseRow } from "../lib/task-format.ts";
import type { ExperimentDetail, ResultRow, Run } from "../lib/types.ts";
import type { TaskListing } from "../../server/contract/tasks.ts";
import { RunCurves, RunPicker } from "./curves.tsx";
import { ExperimentActions } from "./experiments.tsx";

/**
 * PGR bars (of `task` alone where the experiment has several) and the median-PGR table of every task, drawn
 * from the API's summary (the CLI's numbers, not recomputed).
 */
function SummaryViews(
  { query, params, rows, task }: {
    query: string;
    params: ReadonlyMap<string, number>;
    rows: ResultRow[];
    task?: string;
  },
) {
  const summary = useResultsSummary(query, statusVersion.value);
  if (summary.error) return <ErrorBox message={summary.error} onRetry={summary.reload} />;
  if (!summary.data) return <Loading what="the results summary" />;
  const ofTask = task === undefined
    ? summary.data
    : { ...summary.data, cells: summary.data.cells.filter((c) => c.task === task) };
  return (
    <>
      <h3>Performance gap recovered{task === undefined ? "" : ` — ${task}`}</h3>
      <PgrBars summary={ofTask} params={params} rows={rows} />
      <h3>Median PGR</h3>
      <MedianPgrTable summary={summary.data} />
    </>
  );
}

export function ExportButtons({ query }: { query: string }) {
  return (
    <div class="actions">
      <a class="button secondary" href={`/api/results/export.csv${query}`} download>Export CSV</a>
      <a class="button secondary" href={`/api/results/export.json${query}`} download>Export JSON</a>
    </div>
  );
}

/** Figure 8 with the API's intervals for the same rows (the results summary of `summaryQuery`). */
export function AgreementWithIntervals(
  { rows, params, summaryQuery }: {
    rows: ResultRow[];
    params: ReadonlyMap<string, number>;
    summaryQuery: string;
  },
) {
  const summary = useResultsSummary(summaryQuery, statusVersion.value);
  return <AgreementCharts rows={rows} params={params} cells={summary.data?.cells} />;
}

/**
 * Method picker, x axis (parameters or pretraining compute; ?x=compute in the address) and the
 * GT-early-stopping toggle above the figure-3 plot; its intervals over seeds come from the API's summary
 * of `summaryQuery` (the same rows).
 */
export function Fig3WithControls(
  { rows, params, compute, summaryQuery }: {
    rows: ResultRow[];
    params: ReadonlyMap<string, number>;
    compute: ReadonlyMap<string, number>;
    summaryQuery: string;
  },
) {
  const summary = useResultsSummary(summaryQuery, statusVersion.value);
  const axis = currentQuery.value.get("x") === "compute" ? "compute" : "params";
  const methods = methodsOf(rows);
  const [method, setMethod] = useState(methods[0]);
  const [oracle, setOracle] = useState(false);
  const shown = methods.includes(method) ? method : methods[0];
  const hasOracle = rows.some((r) => r.oracleStudentAcc !== null);
  return (
    <>
      <div class="form-row controls">
        <label>
          x axis{" "}
          <select
            data-testid="fig3-axis"
            value={axis}
            onChange={(e) =>
              setQueryParam("x", (e.target as HTMLSelectElement).value === "compute" ? "compute" : "")}
          >
            <option value="params">parameters</option>
            <option value="compute">pretraining compute (6 · params · tokens)</option>
          </select>
        </label>
        {methods.length > 1 && (
          <label>
            Method{" "}
            <select value={shown} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
              {methods.map((m) => <option key={m} value={m}>{m}</option>)}
            </select>
          </label>
        )}
        {hasOracle && (
          <label class="checkbox">
            <input
              type="checkbox"
              checked={oracle}
              onChange={(e) => setOracle((e.target as HTMLInputElement).checked)}
            />
            student at its best test point (GT early stopping)
          </label>
        )}
      </div>
      <AccuracyVsSizePlot
        rows={rows}
        params={axis === "compute" ? compute : params}
        axis={axis}
        method={shown}
        useOracle={oracle}
        cells={summary.data?.cells}
      />
    </>
  );
}

/** The experiment's settings with readable names ("student mode", not `studentMode`), its date and job. */
function ConfigFacts({ experiment: e }: { experiment: ExperimentDetail }) {
  return (
    <dl class="facts" data-testid="config-facts">
      {Object.entries(e.config).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => (
        <div key={k} data-key={k}>
          <dt>{readableKey(k)}</dt>
          <dd>{Array.isArray(v) ? v.join(", ") : String(v)}</dd>
        </div>
      ))}
      <div>
        <dt>created</dt>
        <dd>{formatTime(e.createdAt)}</dd>
      </div>
      {e.jobId !== null && (
        <div>
          <dt>job</dt>
          <dd>
            <a href={`/jobs/${e.jobId}`}>job {e.jobId}</a>
          </dd>
        </div>
      )}
    </dl>
  );
}

/**
 * The results of an experiment or sweep. On several tasks, one task at a time (`scope`, picked above):
 * figure 3, its intervals, the PGR bars and the cautions are all of that task's rows; the median table and
 * the table of every row cover all tasks, each line naming its task.
 */
function ResultViews(
  { experiment: e, scope, params, compute, sweep }: {
    experiment: ExperimentDetail;
    scope: ReturnType<typeof scopeToTask>;
    params: ReadonlyMap<string, number>;
    compute: ReadonlyMap<string, number>;
    sweep: boolean;
  },
) {
  const query = `?experimentId=${e.id}`;
  const several = scope.tasks.length > 1;
  return (
    <>
      {several && (
        <div class="form-row controls">
          <TaskPicker
            tasks={scope.tasks}
            pairwise={tasksOf(e.results.filter(isPairwiseRow))}
            current={scope.task}
          />
          <span class="muted small">
            {scope.tasks.length}{" "}
            tasks: figure 3, the PGR bars and the cautions show the one picked; the median table and the
            result rows cover all of them.
          </span>
        </div>
      )}
      <PairwiseNote rows={e.results} />
      <ResultWarnings rows={scope.rows} />
      <Fig3WithControls rows={scope.rows} params={params} compute={compute} summaryQuery={query} />
      <SummaryViews query={query} params={params} rows={scope.rows} task={several ? scope.task : undefined} />
      <details>
        <summary>All result rows ({e.results.length})</summary>
        <ResultsTable rows={e.results} sweepIds={sweep ? new Set([e.id]) : undefined} />
      </details>
    </>
  );
}

/** No experiment (or sweep) of this id: experiments and sweeps share ids, so one of the other kind is offered. */
function NoSuchExperiment({ id, kind, title }: { id: number; kind: "experiment" | "sweep"; title: string }) {
  const otherKind = kind === "sweep" ? "experiment" : "sweep";
  const other = useResource<ExperimentDetail>(experimentPath({ kind: otherKind, id }));
  // "Does not exist" only once the other kind has answered too, never as a flash before it.
  if (!other.data && !other.error) return <Loading what={title.toLowerCase()} />;
  if (!other.data) {
    return <EmptyState title={`${title} does not exist.`}>It may have been deleted.</EmptyState>;
  }
  return (
    <EmptyState title={`${title} is ${otherKind === "sweep" ? "a sweep" : "an experiment"}.`}>
      Open <a href={experimentPath({ kind: otherKind, id })}>{otherKind} {id}</a>.
    </EmptyState>
  );
}

export function ExperimentPage({ id, kind }: { id: number; kind: "experiment" | "sweep" }) {
  const base = kind === "sweep" ? "/sweeps" : "/experiments";
  const detail = useResource<ExperimentDetail>(`${base}/${id}`, statusVersion.value);
  // The runs table names each run by what it is (method, seed, pair), which the picker shows.
  const named = useAllRows<Run>(`/runs?experimentId=${id}`, statusVersion.value);
  // The lab's order of tasks (the world file's first: world-region) after a sweep's own list, which may name
  // a group ("world") rather than its tasks: not the alphabet's (world-blood).
  const listed = useResource<TaskListing[]>("/tasks");
  const { params, compute } = useParamsBySize();
  const title = `${kind === "sweep" ? "Sweep" : "Experiment"} ${id}`;
  if (detail.error) {
    return (
      <>
        <PageHeader title={title} />
        {detail.errorStatus === 404
          ? <NoSuchExperiment id={id} kind={kind} title={title} />
          : <ErrorBox message={detail.error} onRetry={detail.reload} />}
        <p>
          <a href="/experiments">Back to all experiments</a>
        </p>
      </>
    );
  }
  if (!detail.data) return <Loading what={title.toLowerCase()} />;
  const e = detail.data;
  const status = (e.jobId !== null ? liveJobs.value.get(e.jobId)?.status : undefined) ?? e.job?.status ??
    e.status;
  const runParam = Number(currentQuery.value.get("run"));
  const runningRun = e.runs.find((r) => r.status === "running");
  const chosenRun = e.runs.find((r) => r.id === runParam) ?? runningRun ?? e.runs[e.runs.length - 1];
  const exportQuery = `?experimentId=${id}`;
  const sweepTasks = [
    ...(Array.isArray(e.config.tasks) ? e.config.tasks.map(String) : []),
    ...(listed.data ?? []).map((t) => t.name),
  ];
  const wantedTask = currentQuery.value.get("task") ?? "";
  const scope = scopeToTask(e.results, wantedTask || null, sweepTasks);
  const several = scope.tasks.length > 1;

  return (
    <>
      <PageHeader title={e.name ? `${title} — ${e.name}` : title}>
        <ExportButtons query={exportQuery} />
        <ExperimentActions experiment={{ ...e, status }} onChange={detail.reload} />
      </PageHeader>
      <Section title="Status" id="status">
        <JobLiveProgress
          jobId={e.jobId}
          status={e.job?.status ?? e.status}
          progress={e.job?.progress}
          error={e.job?.error}
        />
        <ConfigFacts experiment={e} />
      </Section>
      <Section title="Results" id="results">
        {e.results.length === 0
          ? (
            <EmptyState
              title={status === "failed"
                ? "This run failed before producing results (the error is above)."
                : status === "done"
                ? "Finished without results."
                : "Results appear here when the runs finish."}
            >
              {status === "failed" && (
                <>
                  Fix the cause and start it again from the <a href="/experiments">Experiments</a> page.
                </>
              )}
            </EmptyState>
          )
          : (
            <ResultViews
              experiment={e}
              scope={scope}
              params={params}
              compute={compute}
              sweep={kind === "sweep"}
            />
          )}
      </Section>
      <Section title="Training curves" id="curves">
        {e.runs.length === 0
          ? (
            <EmptyState
              title={status === "queued"
                ? "Queued: curves appear when the first run starts."
                : "No runs recorded."}
            />
          )
          : (
            <>
              {/* Keyed by ?task=, so that picking another task above picks it here too. */}
              <RunPicker
                key={wantedTask}
                runs={e.runs.map((r) => ({ ...r, name: named.data?.find((n) => n.id === r.id)?.name }))}
                current={chosenRun?.id}
                hrefOf={(r) => `${base}/${id}${queryWith("run", String(r.id))}`}
                task={wantedTask}
              />
              {chosenRun && (
                <RunCurves
                  runId={chosenRun.id}
                  readings={checkpointReadings(chosenRun, e.results)}
                  chance={runChance(chosenRun, e.results)}
                />
              )}
            </>
          )}
      </Section>
      {scope.rows.some((r) => r.agreement) && (
        <Section title={`Agreement with the supervisor${several ? ` — ${scope.task}` : ""}`} id="agreement">
          <AgreementWithIntervals rows={scope.rows} params={params} summaryQuery={`?experimentId=${id}`} />
        </Section>
      )}
      <Section title="Probe saliency" id="saliency">
        {e.probes.length > 0
          ? <SaliencyChart probes={e.probes} nTest={sharedTestSize(e.results)} />
          : (
            <EmptyState title="No probe results for this experiment.">
              Tick "linear probes per layer" when starting an experiment (or pass <Cmd>--probes</Cmd>{" "}
              to the CLI).
            </EmptyState>
          )}
      </Section>
    </>
  );
}
