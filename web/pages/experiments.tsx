/**
 * Experiments: every experiment and sweep with live status, progress and ETA (SSE), cancel and delete, and
 * the form that starts one, validated in the browser with the API's own zod schemas.
 */
import { useState } from "preact/hooks";
import type { z } from "zod";
import { ExperimentCreate, METHODS, SweepCreate } from "../../server/api/schemas.ts";
import { CheckboxGroup, describedBy, Field, TextField } from "../components/fields.tsx";
import {
  Cmd,
  EmptyState,
  ErrorBox,
  JobLiveProgress,
  Loading,
  LoadMore,
  PageHeader,
  Section,
} from "../components/ui.tsx";
import { apiDelete, apiPost, describeError } from "../lib/api.ts";
import {
  enumOptions,
  type FieldErrors,
  issuesToFieldErrors,
  parseNumberList,
  parseOptionalNumber,
  serverErrorToFieldErrors,
} from "../lib/forms.ts";
import { formatTime } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { usePagedList, useResource } from "../lib/resource.ts";
import { navigate } from "../lib/router.ts";
import type { Experiment, ModelListing, TaskListing } from "../lib/types.ts";

/** The choices come from the server's schema (absent there → no field here). */
const SHAPE = ExperimentCreate.shape as Record<string, z.ZodType>;
const STUDENT_MODES = enumOptions(SHAPE["studentMode"]);
const GENERATIVE_BASES = enumOptions(SHAPE["generativeBase"]);
const STUDENT_MODE_HINTS: Record<string, string> = {
  finetune: "the whole strong model is finetuned (student and ceiling)",
  probe: "logistic probe on the strong model's frozen last-layer features",
};

function describeConfig(e: Experiment): string {
  const c = e.config as Record<string, unknown>;
  if (e.kind === "sweep") {
    const list = (v: unknown) => Array.isArray(v) ? v.join(", ") : "?";
    return `${list(c.tasks)} · sizes ${list(c.sizes)} · ${list(c.methods)} · seeds ${list(c.seeds)}`;
  }
  const probe = c.studentMode === "probe" ? " · probe student" : "";
  return `${c.task} · ${c.weak} → ${c.strong} · ${c.method ?? "naive"}${probe} · seed ${c.seed ?? 0}`;
}

function detailPath(e: Experiment): string {
  return `/${e.kind === "sweep" ? "sweeps" : "experiments"}/${e.id}`;
}

export function ExperimentActions(
  { experiment, onChange }: { experiment: Experiment; onChange: () => void },
) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string>();
  const base = `/${experiment.kind === "sweep" ? "sweeps" : "experiments"}/${experiment.id}`;
  const active = experiment.status === "queued" || experiment.status === "running";
  const label = `${experiment.kind} ${experiment.id}`;
  const act = async (what: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await what();
      onChange();
    } catch (err) {
      setError(describeError(err));
    }
    setConfirming(false);
  };
  return (
    <div class="actions">
      {active && (
        <button
          type="button"
          class="secondary"
          aria-label={`Cancel ${label}`}
          onClick={() => act(() => apiPost(`${base}/cancel`))}
        >
          Cancel
        </button>
      )}
      {!active && !confirming && (
        <button
          type="button"
          class="danger-outline"
          aria-label={`Delete ${label}`}
          onClick={() => setConfirming(true)}
        >
          Delete
        </button>
      )}
      {!active && confirming && (
        <>
          <button type="button" class="danger" onClick={() => act(() => apiDelete(base))}>
            Delete {label}
          </button>
          <button type="button" class="secondary" onClick={() => setConfirming(false)}>Keep</button>
        </>
      )}
      {error && <span class="field-error" role="alert">{error}</span>}
    </div>
  );
}

function ExperimentList() {
  const cue = statusVersion.value;
  const experiments = usePagedList<Experiment>("/experiments", cue);
  const sweeps = usePagedList<Experiment>("/sweeps", cue);
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
        Start one with the form, or from a terminal:{" "}
        <Cmd>deno task lab w2s --task world-region --weak nano --strong small --method naive</Cmd>
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
                <a href={detailPath(e)}>{e.kind === "sweep" ? "sweep" : "exp"} {e.id}</a>
              </td>
              <td>
                <a href={detailPath(e)} class="plain">
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

function ExperimentForm() {
  const tasks = useResource<TaskListing[]>("/tasks");
  const models = useResource<ModelListing[]>("/models");
  const [mode, setMode] = useState<"experiment" | "sweep">("experiment");
  const [name, setName] = useState("");
  const [task, setTask] = useState("");
  const [weak, setWeak] = useState("");
  const [strong, setStrong] = useState("");
  const [method, setMethod] = useState<string>("naive");
  const [studentMode, setStudentMode] = useState(STUDENT_MODES?.[0] ?? "");
  const [generativeBase, setGenerativeBase] = useState(GENERATIVE_BASES?.[0] ?? "");
  const [lmEpochs, setLmEpochs] = useState("");
  const [promptingShots, setPromptingShots] = useState("");
  const [maxExamples, setMaxExamples] = useState("");
  const [seeds, setSeeds] = useState("0");
  const [epochs, setEpochs] = useState("");
  const [probes, setProbes] = useState(false);
  const [leakage, setLeakage] = useState(false);
  const [sweepTasks, setSweepTasks] = useState<string[]>([]);
  const [sweepSizes, setSweepSizes] = useState<string[]>([]);
  const [sweepMethods, setSweepMethods] = useState<string[]>(["naive"]);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState<string>();

  const taskNames = tasks.data?.map((t) => t.name) ?? [];
  const sizeNames = models.data?.map((m) => m.name) ?? [];
  const chosenTask = task || taskNames[0] || "";
  const chosenWeak = weak || sizeNames[0] || "";
  const chosenStrong = strong || sizeNames[Math.min(2, sizeNames.length - 1)] || "";

  const submit = async (event: Event) => {
    event.preventDefault();
    setStarted(undefined);
    const seedList = parseNumberList(seeds);
    const optionalNumber = (key: string, text: string) =>
      parseOptionalNumber(text) !== undefined ? { [key]: parseOptionalNumber(text) } : {};
    const common = {
      ...(name.trim() ? { name: name.trim() } : {}),
      ...optionalNumber("epochs", epochs),
      ...optionalNumber("maxExamples", maxExamples),
      ...(STUDENT_MODES ? { studentMode } : {}),
      probes,
      leakage,
    };
    const found: FieldErrors = {};
    if (seedList.length === 0) found.seeds = "enter at least one seed, e.g. 0 or 0, 1, 2";
    let bodies: unknown[] = [];
    if (mode === "experiment") {
      for (const seed of seedList.length > 0 ? seedList : [0]) {
        const body = {
          ...common,
          task: chosenTask,
          weak: chosenWeak,
          strong: chosenStrong,
          method,
          seed,
          ...optionalNumber("promptingShots", promptingShots),
          // Generative settings go only with the generative method (the schema refuses them otherwise).
          ...(method === "generative"
            ? { ...(GENERATIVE_BASES ? { generativeBase } : {}), ...optionalNumber("lmEpochs", lmEpochs) }
            : {}),
        };
        const parsed = ExperimentCreate.safeParse(body);
        if (!parsed.success) {
          Object.assign(found, issuesToFieldErrors(parsed.error.issues, { seed: "seeds" }), found);
        }
        bodies.push(body);
      }
      // The same ladder-order rule the server applies, checked here to answer before a round trip.
      if (!found.strong && sizeNames.indexOf(chosenWeak) >= sizeNames.indexOf(chosenStrong)) {
        found.strong =
          `the weak model must be smaller than the strong one (weak "${chosenWeak}", strong "${chosenStrong}")`;
      }
    } else {
      const body = {
        ...common,
        tasks: sweepTasks,
        sizes: sweepSizes,
        methods: sweepMethods,
        seeds: seedList,
      };
      const parsed = SweepCreate.safeParse(body);
      if (!parsed.success) Object.assign(found, issuesToFieldErrors(parsed.error.issues), found);
      bodies = [body];
    }
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      const created: Array<{ experiment: Experiment }> = [];
      for (const body of bodies) {
        created.push(
          await apiPost<{ experiment: Experiment }>(mode === "experiment" ? "/experiments" : "/sweeps", body),
        );
      }
      setStarted(`Started ${created.map((c) => `${mode} ${c.experiment.id}`).join(", ")}.`);
      if (created.length === 1) navigate(detailPath(created[0].experiment));
    } catch (err) {
      setErrors(
        serverErrorToFieldErrors(
          err,
          mode === "experiment" ? { seed: "seeds" } : { task: "tasks", tasks: "tasks" },
        ),
      );
    } finally {
      setBusy(false);
    }
  };

  if (tasks.error || models.error) return <ErrorBox message={(tasks.error ?? models.error)!} />;
  if (!tasks.data || !models.data) return <Loading what="tasks and models" />;
  const taskHint = tasks.data.find((t) => t.name === chosenTask)?.description;
  const unpretrained = (mode === "experiment" ? [chosenWeak, chosenStrong] : sweepSizes)
    .filter((s) => models.data!.find((m) => m.name === s)?.status !== "pretrained");

  return (
    <form
      class="form"
      onSubmit={submit}
      noValidate
      aria-label="Start an experiment or sweep"
      data-testid="experiment-form"
    >
      <div class="segmented" role="radiogroup" aria-label="What to start">
        {(["experiment", "sweep"] as const).map((m) => (
          <label key={m} class={mode === m ? "selected" : ""}>
            <input
              type="radio"
              name="mode"
              value={m}
              checked={mode === m}
              onChange={() => (setMode(m), setErrors({}))}
            />
            {m === "experiment" ? "One experiment" : "Sweep (all pairs)"}
          </label>
        ))}
      </div>
      {mode === "experiment"
        ? (
          <div class="form-grid">
            <Field id="task" label="Task" error={errors.task} hint={taskHint}>
              <select
                {...describedBy("task", errors.task, taskHint)}
                value={chosenTask}
                onChange={(e) => setTask((e.target as HTMLSelectElement).value)}
              >
                {taskNames.map((t) => <option key={t} value={t}>{t}</option>)}
              </select>
            </Field>
            <Field id="weak" label="Weak model (supervisor)" error={errors.weak}>
              <select
                {...describedBy("weak", errors.weak)}
                value={chosenWeak}
                onChange={(e) => setWeak((e.target as HTMLSelectElement).value)}
              >
                {models.data.map((m) => <option key={m.name} value={m.name}>{m.name} ({m.status})</option>)}
              </select>
            </Field>
            <Field id="strong" label="Strong model (student)" error={errors.strong}>
              <select
                {...describedBy("strong", errors.strong)}
                value={chosenStrong}
                onChange={(e) => setStrong((e.target as HTMLSelectElement).value)}
              >
                {models.data.map((m) => <option key={m.name} value={m.name}>{m.name} ({m.status})</option>)}
              </select>
            </Field>
            <Field id="method" label="Method" error={errors.method}>
              <select
                {...describedBy("method", errors.method)}
                value={method}
                onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}
              >
                {METHODS.map((m) => <option key={m} value={m}>{m}</option>)}
              </select>
            </Field>
            {method === "generative" && GENERATIVE_BASES && (
              <Field
                id="generativeBase"
                label="Loss after LM finetuning"
                error={errors.generativeBase}
                hint="generative: the student's loss once the LM finetuning is done"
              >
                <select
                  {...describedBy("generativeBase", errors.generativeBase, "generativeBase")}
                  value={generativeBase}
                  onChange={(e) => setGenerativeBase((e.target as HTMLSelectElement).value)}
                >
                  {GENERATIVE_BASES.map((m) => <option key={m} value={m}>{m}</option>)}
                </select>
              </Field>
            )}
            {method === "generative" && (
              <Field
                id="lmEpochs"
                label="LM finetuning epochs (optional)"
                error={errors.lmEpochs}
                hint="default 2"
              >
                <input
                  {...describedBy("lmEpochs", errors.lmEpochs, "lmEpochs")}
                  type="text"
                  inputMode="numeric"
                  value={lmEpochs}
                  onInput={(e) => setLmEpochs((e.target as HTMLInputElement).value)}
                />
              </Field>
            )}
            <Field
              id="promptingShots"
              label="Prompting baselines, k (optional)"
              error={errors.promptingShots}
              hint="zero-shot and k-shot accuracy of the pretrained strong model"
            >
              <input
                {...describedBy("promptingShots", errors.promptingShots, "promptingShots")}
                type="text"
                inputMode="numeric"
                value={promptingShots}
                onInput={(e) => setPromptingShots((e.target as HTMLInputElement).value)}
              />
            </Field>
          </div>
        )
        : (
          <div class="form-stack">
            <CheckboxGroup
              id="tasks"
              legend="Tasks"
              options={taskNames}
              selected={sweepTasks}
              onChange={setSweepTasks}
              error={errors.tasks}
            />
            <CheckboxGroup
              id="sizes"
              legend="Sizes (every weak < strong pair runs)"
              options={sizeNames}
              selected={sweepSizes}
              onChange={setSweepSizes}
              error={errors.sizes}
            />
            <CheckboxGroup
              id="methods"
              legend="Methods"
              options={[...METHODS]}
              selected={sweepMethods}
              onChange={setSweepMethods}
              error={errors.methods}
            />
          </div>
        )}
      <div class="form-grid">
        <Field
          id="seeds"
          label="Seeds"
          error={errors.seeds}
          hint={mode === "experiment" ? "one experiment per seed, e.g. 0, 1, 2" : "e.g. 0, 1, 2"}
        >
          <input
            {...describedBy("seeds", errors.seeds, "seeds")}
            type="text"
            inputMode="numeric"
            value={seeds}
            onInput={(e) => setSeeds((e.target as HTMLInputElement).value)}
          />
        </Field>
        <TextField
          id="epochs"
          label="Epochs (optional)"
          error={errors.epochs}
          hint="default: the task's setting"
          value={epochs}
          onValue={setEpochs}
          numeric
        />
        {STUDENT_MODES && (
          <Field
            id="studentMode"
            label="Student mode"
            error={errors.studentMode}
            hint={STUDENT_MODE_HINTS[studentMode]}
          >
            <select
              {...describedBy("studentMode", errors.studentMode, STUDENT_MODE_HINTS[studentMode])}
              value={studentMode}
              onChange={(e) => setStudentMode((e.target as HTMLSelectElement).value)}
            >
              {STUDENT_MODES.map((m) => <option key={m} value={m}>{m}</option>)}
            </select>
          </Field>
        )}
        <Field
          id="maxExamples"
          label="Examples per split (optional)"
          error={errors.maxExamples}
          hint="a seeded sample for quick runs; default: all"
        >
          <input
            {...describedBy("maxExamples", errors.maxExamples, "maxExamples")}
            type="text"
            inputMode="numeric"
            value={maxExamples}
            onInput={(e) => setMaxExamples((e.target as HTMLInputElement).value)}
          />
        </Field>
        <TextField id="name" label="Name (optional)" error={errors.name} value={name} onValue={setName} />
      </div>
      <div class="form-row">
        <label class="checkbox">
          <input
            type="checkbox"
            checked={probes}
            onChange={(e) => setProbes((e.target as HTMLInputElement).checked)}
          />
          linear probes per layer (saliency)
        </label>
        <label class="checkbox">
          <input
            type="checkbox"
            checked={leakage}
            onChange={(e) => setLeakage((e.target as HTMLInputElement).checked)}
          />
          let test items into pretraining (leakage)
        </label>
      </div>
      {unpretrained.length > 0 && (
        <p class="notice small">
          Not pretrained yet: {[...new Set(unpretrained)].join(", ")}. Pretrain them on the{" "}
          <a href="/models">Models</a> page (or{" "}
          <Cmd>deno task lab pretrain --size {unpretrained[0]}</Cmd>) first.
        </p>
      )}
      {errors.form && <p class="field-error" role="alert" data-field="form">{errors.form}</p>}
      {started && <p class="success" role="status">{started}</p>}
      <div class="form-row">
        <button type="submit" disabled={busy}>
          {busy ? "Starting…" : mode === "experiment" ? "Start experiment" : "Start sweep"}
        </button>
      </div>
    </form>
  );
}

export function ExperimentsPage() {
  return (
    <>
      <PageHeader title="Experiments" />
      <div class="two-columns">
        <Section title="Experiments and sweeps" id="experiment-list">
          <ExperimentList />
        </Section>
        <Section title="Start" id="start">
          <ExperimentForm />
        </Section>
      </div>
    </>
  );
}
