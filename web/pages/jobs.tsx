/**
 * Jobs: the queue with state, live progress and errors; one job's details with its runs (each one's curves
 * for a few, the runs table for more); a demo job to try the queue.
 */
import { useState } from "preact/hooks";
import { ToyTrainParams } from "../../server/contract/jobs.ts";
import { TextField } from "../components/fields.tsx";
import {
  EmptyState,
  ErrorBox,
  JobLiveProgress,
  Loading,
  LoadMore,
  PageHeader,
  Section,
} from "../components/ui.tsx";
import { apiPost, describeError } from "../lib/api.ts";
import {
  type FieldErrors,
  issuesToFieldErrors,
  parseOptionalNumber,
  serverErrorToFieldErrors,
} from "../lib/forms.ts";
import { adapterLabel, formatDuration, formatTime } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { usePagedList, useResource } from "../lib/resource.ts";
import { experimentPath, jobExperiment, navigate } from "../lib/router.ts";
import type { Job } from "../lib/types.ts";
import type { RunTableRow } from "../../server/contract/runs.ts";
import { RunCurves } from "./curves.tsx";
import { RUNS_PAGE, runsQuery, RunsTable, useRunSort } from "./runs.tsx";

/** Cancel for a queued or running job; Retry (resume from its saved state) for a failed or cancelled one. */
function JobAction({ job, onDone }: { job: Job; onDone: () => void }) {
  const [error, setError] = useState<string>();
  const active = job.status === "queued" || job.status === "running";
  const retryable = job.status === "failed" || job.status === "cancelled";
  if (!active && !retryable) return null;
  const [action, label] = active ? ["cancel", "Cancel"] : ["retry", "Retry"];
  return (
    <span class="actions">
      <button
        type="button"
        class="secondary"
        aria-label={`${label} job ${job.id}`}
        title={retryable ? "queue it again; it resumes from its saved state" : undefined}
        onClick={() =>
          apiPost(`/jobs/${job.id}/${action}`).then(onDone, (err) => setError(describeError(err)))}
      >
        {label}
      </button>
      {error && <span class="field-error" role="alert">{error}</span>}
    </span>
  );
}

/** Where a job's last attempt ran: "host · adapter" as a person reads it, or "—" before any worker took it. */
export function ranOnText(job: Job): string {
  if (!job.ranOn) return "—";
  return [job.ranOn.host, job.ranOn.adapter && adapterLabel(job.ranOn.adapter)].filter(Boolean).join(" · ");
}

/** Where a job ran, with the worker and the adapter's full name (its ids included) on hover. */
function RanOn({ job }: { job: Job }) {
  const on = job.ranOn;
  const title = on ? `host ${on.host} · worker ${on.owner} · adapter ${on.adapter ?? "none"}` : undefined;
  return <span title={title}>{ranOnText(job)}</span>;
}

function ToyJobForm() {
  const [steps, setSteps] = useState("200");
  const [delay, setDelay] = useState("20");
  const [seed, setSeed] = useState("0");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const params = {
      steps: parseOptionalNumber(steps),
      stepDelayMs: parseOptionalNumber(delay),
      seed: parseOptionalNumber(seed),
    };
    const parsed = ToyTrainParams.safeParse(params);
    if (!parsed.success) {
      setErrors(issuesToFieldErrors(parsed.error.issues));
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const job = await apiPost<Job>("/jobs", { type: "toy-train", params: parsed.data });
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      setErrors(serverErrorToFieldErrors(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      class="form"
      onSubmit={submit}
      noValidate
      aria-label="Start a demo training job"
      data-testid="toy-form"
    >
      <p class="muted small">
        A seeded logistic regression on two Gaussian blobs (Bayes accuracy ≈ 0.92): a quick way to see the
        queue, live progress and curves work.
      </p>
      <div class="form-grid">
        <TextField id="steps" label="Steps" error={errors.steps} value={steps} onValue={setSteps} numeric />
        <TextField
          id="stepDelayMs"
          label="Delay per step (ms)"
          error={errors.stepDelayMs}
          value={delay}
          onValue={setDelay}
          numeric
        />
        <TextField id="seed" label="Seed" error={errors.seed} value={seed} onValue={setSeed} numeric />
      </div>
      {errors.form && <p class="field-error" role="alert" data-field="form">{errors.form}</p>}
      <button type="submit" disabled={busy}>Start demo job</button>
    </form>
  );
}

export function JobsPage() {
  const jobs = usePagedList<Job>("/jobs", statusVersion.value);
  return (
    <>
      <PageHeader title="Jobs" />
      <div class="two-columns">
        <Section title="Queue" id="queue">
          {jobs.error && <ErrorBox message={jobs.error} onRetry={jobs.reload} />}
          {!jobs.data && !jobs.error && <Loading what="jobs" />}
          {jobs.data?.length === 0 && (
            <EmptyState title="The queue is empty.">
              Start an experiment on the <a href="/experiments">Experiments</a> page, pretrain a model on the
              {" "}
              <a href="/models">Models</a> page, or try the demo job.
            </EmptyState>
          )}
          {jobs.data && jobs.data.length > 0 && (
            <div class="table-scroll">
              <table class="table" data-testid="job-list">
                <thead>
                  <tr>
                    <th scope="col">job</th>
                    <th scope="col">type</th>
                    <th scope="col" class="wide">state</th>
                    <th scope="col" class="num">tries</th>
                    <th scope="col">ran on</th>
                    <th scope="col">created</th>
                    <th scope="col">
                      <span class="visually-hidden">actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {jobs.data.map((j) => (
                    <tr key={j.id} data-job-row={j.id}>
                      <td>
                        <a href={`/jobs/${j.id}`}>#{j.id}</a>
                      </td>
                      <td class="mono nowrap">{j.type}</td>
                      <td>
                        <JobLiveProgress
                          jobId={j.id}
                          status={j.status}
                          progress={j.progress}
                          error={j.error}
                        />
                      </td>
                      <td class="num">{j.attempts}/{j.maxAttempts}</td>
                      <td class="muted small" data-testid="ran-on">
                        <RanOn job={j} />
                      </td>
                      <td class="muted small nowrap">{formatTime(j.createdAt)}</td>
                      <td>
                        <JobAction job={j} onDone={jobs.reload} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <LoadMore list={jobs} what="jobs" />
            </div>
          )}
        </Section>
        <Section title="Demo job" id="demo">
          <ToyJobForm />
        </Section>
      </div>
    </>
  );
}

/** Runs a job's page draws the curves of, one section each (a w2s job's weak, ceiling and student). */
const CURVES_UP_TO = 3;

/**
 * A job's runs: up to CURVES_UP_TO, each one's curves; more (a sweep's hundreds), how many and where their
 * curves are (the sweep's page, with a run picker, and each run's page), over the runs table.
 */
function JobRuns({ job }: { job: Job }) {
  const [sort, onSort] = useRunSort();
  const [showAll, setShowAll] = useState(false);
  const runs = usePagedList<RunTableRow>(
    runsQuery({ jobId: String(job.id) }, sort),
    statusVersion.value,
    RUNS_PAGE,
  );
  if (runs.error) return <ErrorBox message={runs.error} onRetry={runs.reload} />;
  if (!runs.data) return <Loading what="runs" />;
  const total = runs.total ?? runs.data.length;
  if (total <= CURVES_UP_TO) {
    return runs.data.map((r) => (
      <Section key={r.id} title={`Run ${r.id} — training curves`} id={`run-${r.id}`}>
        <RunCurves runId={r.id} />
      </Section>
    ));
  }
  const experiment = jobExperiment(job);
  const link = experiment && <a href={experimentPath(experiment)}>{experiment.kind} {experiment.id}</a>;
  return (
    <Section title="Runs" id="runs">
      <p data-testid="job-runs">
        {total} runs. Their training curves are on {link && <>{link} (with a run picker) and on{" "}</>}
        each run's page (the table's links).
      </p>
      <RunsTable
        rows={runs.data}
        sort={sort}
        onSort={onSort}
        showAll={[showAll, () => setShowAll((a) => !a)]}
      />
      <LoadMore list={runs} what="runs" />
    </Section>
  );
}

export function JobPage({ id }: { id: number }) {
  const job = useResource<Job>(`/jobs/${id}`, statusVersion.value);
  if (job.error) {
    return (
      <>
        <PageHeader title={`Job ${id}`} />
        <ErrorBox message={job.error} onRetry={job.reload} />
        <a href="/jobs">Back to the queue</a>
      </>
    );
  }
  if (!job.data) return <Loading what={`job ${id}`} />;
  const j = job.data;
  const experiment = jobExperiment(j);
  const seconds = j.startedAt && j.finishedAt
    ? (Date.parse(j.finishedAt) - Date.parse(j.startedAt)) / 1000
    : null;
  return (
    <>
      <PageHeader title={`Job ${id} · ${j.type}`}>
        <JobAction job={j} onDone={job.reload} />
      </PageHeader>
      <Section title="State" id="state">
        <JobLiveProgress jobId={j.id} status={j.status} progress={j.progress} error={j.error} />
        <dl class="facts">
          <div>
            <dt>created</dt>
            <dd>{formatTime(j.createdAt)}</dd>
          </div>
          <div>
            <dt>started</dt>
            <dd>{formatTime(j.startedAt)}</dd>
          </div>
          <div>
            <dt>finished</dt>
            <dd>{formatTime(j.finishedAt)}</dd>
          </div>
          <div>
            <dt>took</dt>
            <dd>{formatDuration(seconds)}</dd>
          </div>
          <div>
            <dt>tries</dt>
            <dd>{j.attempts}/{j.maxAttempts}</dd>
          </div>
          <div>
            <dt>ran on</dt>
            <dd data-testid="ran-on">
              <RanOn job={j} />
            </dd>
          </div>
          {experiment && (
            <div>
              <dt>{experiment.kind}</dt>
              <dd>
                <a href={experimentPath(experiment)}>{experiment.kind} {experiment.id}</a>
              </dd>
            </div>
          )}
        </dl>
        <details>
          <summary>Parameters</summary>
          <pre class="json">{JSON.stringify(j.params, null, 2)}</pre>
        </details>
        {j.result !== null && j.result !== undefined && (
          <details>
            <summary>Result</summary>
            <pre class="json">{JSON.stringify(j.result, null, 2)}</pre>
          </details>
        )}
      </Section>
      <JobRuns job={j} />
    </>
  );
}
