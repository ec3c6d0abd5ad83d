/**
 * Experiments: every experiment and sweep with live status, progress and ETA (SSE), cancel and delete, the
 * form that starts one (experiment-form.tsx), and the demo's button (POST /api/demo) with its progress.
 */
import { useState } from "preact/hooks";
import {
  AskButton,
  AskQuestion,
  Cmd,
  EmptyState,
  ErrorBox,
  JobLiveProgress,
  Loading,
  LoadMore,
  PageHeader,
  Section,
  useAsking,
} from "../components/ui.tsx";
import { DEMO_JOB_TYPE } from "../../server/contract/jobs.ts";
import { apiDelete, apiPost, apiToken, describeError } from "../lib/api.ts";
import { formatTime } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { type PagedList, usePagedList, useResource } from "../lib/resource.ts";
import { experimentPath, jobExperiment } from "../lib/router.ts";
import type { Experiment, Job } from "../lib/types.ts";
import { ExperimentForm } from "./experiment-form.tsx";

function describeConfig(e: Experiment): string {
  const c = e.config as Record<string, unknown>;
  if (e.kind === "sweep") {
    const list = (v: unknown) => Array.isArray(v) ? v.join(", ") : "?";
    const auxconfAt = c.auxconfAt === "largest-gap" ? " (auxconf: largest gap)" : "";
    return `${list(c.tasks)} · sizes ${list(c.sizes)} · ${list(c.methods)}${auxconfAt} · seeds ${
      list(c.seeds)
    }`;
  }
  const probe = c.studentMode === "probe" ? " · probe student" : "";
  return `${c.task} · ${c.weak} → ${c.strong} · ${c.method ?? "naive"}${probe} · seed ${c.seed ?? 0}`;
}

export function ExperimentActions(
  { experiment, onChange }: { experiment: Experiment; onChange: () => void },
) {
  const [error, setError] = useState<string>();
  const asking = useAsking();
  const base = experimentPath(experiment);
  const active = experiment.status === "queued" || experiment.status === "running";
  const label = `${experiment.kind} ${experiment.id}`;
  const cancel = () => {
    setError(undefined);
    apiPost(`${base}/cancel`).then(onChange, (err) => setError(describeError(err)));
  };
  return (
    <div class="actions">
      {active && (
        <button type="button" class="secondary" aria-label={`Cancel ${label}`} onClick={cancel}>
          Cancel
        </button>
      )}
      {!active && <AskButton asking={asking} label="Delete" name={`Delete ${label}`} />}
      {!active && (
        <AskQuestion
          asking={asking}
          name={`Delete ${label}`}
          yes={`Delete ${label}`}
          no="Keep"
          onConfirm={() => apiDelete(base).then(onChange)}
        />
      )}
      {error && <span class="field-error" role="alert">{error}</span>}
    </div>
  );
}

/** Every experiment and sweep, newest first; with none yet, the demo's button and how else to start. */
function ExperimentList(
  { experiments, sweeps }: { experiments: PagedList<Experiment>; sweeps: PagedList<Experiment> },
) {
  if (experiments.error || sweeps.error) {
    return (
      <ErrorBox
        message={(experiments.error ?? sweeps.error)!}
        onRetry={() => (experiments.reload(), sweeps.reload())}
      />
    );
  }
  if (!experiments.data || !sweeps.data) return <Loading what="experiments" />;
  // Each list is paged on its own; below the oldest row of a list with more pages the merged order would
  // skip its unloaded rows, so only rows newer than that cut are shown.
  const cut = [experiments, sweeps].filter((l) => l.hasMore).map((l) => l.data!.at(-1)!.createdAt).sort().at(
    -1,
  );
  const all = [...experiments.data, ...sweeps.data].filter((e) => cut === undefined || e.createdAt >= cut)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  if (all.length === 0) {
    return (
      <EmptyState title="No experiments yet.">
        <p>Start with the demo: weak-to-strong generalization on the lab's world, end to end.</p>
        <DemoLauncher place="empty" />
        <p>
          Or start one with the form, or from a terminal: <Cmd>deno task lab demo</Cmd> or{" "}
          <Cmd>deno task lab w2s --task world-region --weak nano --strong small --method naive</Cmd>
        </p>
      </EmptyState>
    );
  }
  const reload = () => (experiments.reload(), sweeps.reload());
  return (
    <div class="table-scroll">
      <table class="table" data-testid="experiment-list">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">what</th>
            <th scope="col" class="wide">status</th>
            <th scope="col">created</th>
            <th scope="col">
              <span class="visually-hidden">actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {all.map((e) => (
            <tr key={`${e.kind}-${e.id}`} data-experiment-id={e.id} data-kind={e.kind}>
              <td class="nowrap">
                <a href={experimentPath(e)}>{e.kind === "sweep" ? "sweep" : "exp"} {e.id}</a>
              </td>
              <td>
                <a href={experimentPath(e)} class="plain">
                  {e.name && (
                    <>
                      <strong>{e.name}</strong>
                      {" · "}
                    </>
                  )}
                  {describeConfig(e)}
                </a>
              </td>
              <td>
                <JobLiveProgress
                  jobId={e.jobId}
                  status={e.job?.status ?? e.status}
                  progress={e.job?.progress}
                  error={e.job?.error}
                />
              </td>
              <td class="muted small nowrap">{formatTime(e.createdAt)}</td>
              <td>
                <ExperimentActions
                  experiment={{ ...e, status: e.job?.status ?? e.status }}
                  onChange={reload}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <LoadMore
        list={{
          hasMore: experiments.hasMore || sweeps.hasMore,
          loading: experiments.loading || sweeps.loading,
          loadMore: () => {
            if (experiments.hasMore) experiments.loadMore();
            if (sweeps.hasMore) sweeps.loadMore();
          },
        }}
        what="experiments"
      />
    </div>
  );
}

/** What the demo does, in one line under its button. */
const DEMO_LINE = "Pretrains nano, micro, mini and small on the lab's world (sizes already pretrained are " +
  "kept), then runs every world task over every pair, two seeds: naive students, and the aux-confidence " +
  "loss at the largest gap.";

/** The latest demo job's progress while it runs, the link to its sweep's results when it is done. */
function DemoStatus({ job }: { job: Job }) {
  const experiment = jobExperiment(job);
  const sweep = experiment && experimentPath(experiment);
  const experimentId = experiment?.id;
  if (job.status === "done") {
    return (
      <p class="success" data-testid="demo-done">
        The demo is done: {sweep ? <a href={sweep}>see its results (sweep {experimentId})</a> : "its sweep"}.
      </p>
    );
  }
  return (
    <>
      <JobLiveProgress jobId={job.id} status={job.status} progress={job.progress} error={job.error} />
      {sweep && (job.status === "queued" || job.status === "running") && (
        <p class="muted small">
          Its results fill in on <a href={sweep}>sweep {experimentId}</a> as each experiment finishes.
        </p>
      )}
    </>
  );
}

/**
 * The demo's button (POST /api/demo) and the latest demo job: live progress while it is queued or
 * running, then the link to its results. The header holds it; an empty list shows it instead, larger.
 */
function DemoLauncher({ place }: { place: "header" | "empty" }) {
  const latest = useResource<Job[]>(`/jobs?type=${DEMO_JOB_TYPE}&limit=1`, statusVersion.value);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const job = latest.data?.[0];
  const active = job?.status === "queued" || job?.status === "running";
  const start = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await apiPost("/demo");
      latest.reload();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  // As the form's Start: without the token the button would only earn a 401.
  const signedOut = !apiToken.value;
  return (
    <div class={`demo demo-${place}`} data-testid={`demo-${place}`}>
      <button
        type="button"
        class="demo-button"
        disabled={busy || active || signedOut}
        aria-describedby={signedOut ? `demo-signed-out-${place}` : undefined}
        onClick={start}
      >
        {busy ? "Starting the demo…" : "Run the demo (7 to 20 minutes on 2 cores)"}
      </button>
      <p class="muted small demo-line">{DEMO_LINE}</p>
      {signedOut && (
        <p class="hint" id={`demo-signed-out-${place}`}>
          Starting it needs the API token: paste it in <a href="/settings">Settings</a>.
        </p>
      )}
      {error && <p class="field-error" role="alert">{error}</p>}
      {job && (place === "header" || active) && <DemoStatus job={job} />}
    </div>
  );
}

export function ExperimentsPage() {
  const cue = statusVersion.value;
  const experiments = usePagedList<Experiment>("/experiments", cue);
  const sweeps = usePagedList<Experiment>("/sweeps", cue);
  // One demo button: the empty list's (with what the demo does) until there is an experiment, then the header's.
  const listed = experiments.data && sweeps.data && experiments.data.length + sweeps.data.length > 0;
  return (
    <>
      <PageHeader title="Experiments">
        {listed && <DemoLauncher place="header" />}
      </PageHeader>
      <div class="two-columns">
        <Section title="Experiments and sweeps" id="experiment-list">
          <ExperimentList experiments={experiments} sweeps={sweeps} />
        </Section>
        <Section title="Start" id="start">
          <ExperimentForm />
        </Section>
      </div>
    </>
  );
}
