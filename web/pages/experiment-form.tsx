/**
 * The form that starts an experiment (one per seed) or a sweep, validated in the browser with the
 * contract's own zod schemas and ladder rule, so most mistakes are named before a round trip. Its defaults
 * show weak-to-strong on the lab's world: one experiment on a pair whose gap is real, and the demo's sweep.
 */
import { modelStatusWord } from "../lib/format.ts";
import { useState } from "preact/hooks";
import { ExperimentCreate, SweepCreate } from "../../server/contract/experiments.ts";
import { pairError } from "../../server/contract/ladder-rule.ts";
import { GENERATIVE_BASES, METHOD_NAMES, STUDENT_MODES } from "../../server/contract/methods.ts";
import type { ModelListing } from "../../server/contract/models.ts";
import { FINETUNE_RECIPE, RECIPE_OPTIONS, type RecipeOption } from "../../server/contract/results.ts";
import { type TaskListing, WORLD_SUITES } from "../../server/contract/tasks.ts";
import { CheckboxGroup, SelectField, TextField } from "../components/fields.tsx";
import { Cmd, ErrorBox, Loading } from "../components/ui.tsx";
import { apiPost, apiToken } from "../lib/api.ts";
import {
  type FieldErrors,
  issuesToFieldErrors,
  parseNumberList,
  parseOptionalNumber,
  serverErrorToFieldErrors,
} from "../lib/forms.ts";
import { useResource } from "../lib/resource.ts";
import { experimentPath, navigate } from "../lib/router.ts";
import { taskLabel } from "../lib/task-format.ts";
import type { Experiment } from "../lib/types.ts";

type Mode = "experiment" | "sweep";

/** What the form holds, as typed; task, weak and strong stay "" until chosen (the defaults then apply). */
interface FormValues {
  /** The chosen ladder's LadderChoice value: "" for the lab's ladder. */
  ladder: string;
  name: string;
  task: string;
  weak: string;
  strong: string;
  method: string;
  studentMode: string;
  generativeBase: string;
  lmEpochs: string;
  promptingShots: string;
  maxExamples: string;
  seeds: string;
  epochs: string;
  probes: boolean;
  control: boolean;
  leakage: boolean;
  /** The finetuning recipe's options (FINETUNE_RECIPE); "" leaves one unset (the server's default applies). */
  recipe: Record<RecipeOption, string>;
  sweepTasks: string[];
  sweepSizes: string[];
  sweepMethods: string[];
}
type SetValue = <K extends keyof FormValues>(key: K, value: FormValues[K]) => void;

/** A sweep's names for the lab's world's tasks of each format. */
const { classification: WORLD_SUITE, pairwise: WORLD_PAIRWISE_SUITE } = WORLD_SUITES;
const SUITE_LABELS: Record<string, string> = {
  [WORLD_SUITE]: "world — every classification task of the lab's world",
  [WORLD_PAIRWISE_SUITE]: "world-pairwise — every preference task of the lab's world",
};

/** Why the prompting baselines are off for a pairwise task (the server refuses them). */
const NO_PROMPTING_HINT =
  "not for a pairwise task: the prompting baselines read a class word, which a comparison does not have";

/** One experiment: a world task, and a pair far enough apart in size for a real gap to recover. */
const DEFAULT_EXPERIMENT = { task: "world-region", weak: "nano", strong: "small" };
/** Seeds per mode: one experiment, or the demo's two seeds for a sweep (a t-interval needs two). */
const DEFAULT_SEEDS: Record<Mode, string> = { experiment: "0", sweep: "0, 1" };

const INITIAL_VALUES: FormValues = {
  ladder: "",
  name: "",
  task: "",
  weak: "",
  strong: "",
  method: "naive",
  studentMode: STUDENT_MODES[0],
  generativeBase: GENERATIVE_BASES[0],
  lmEpochs: "",
  promptingShots: "",
  maxExamples: "",
  seeds: "0",
  epochs: "",
  probes: false,
  control: false,
  leakage: false,
  recipe: { embeddings: "", headInit: "", decayTo: "" },
  // The demo's sweep (server/lab/demo.ts), naive students only.
  sweepTasks: [WORLD_SUITE],
  sweepSizes: ["nano", "micro", "mini", "small"],
  sweepMethods: ["naive"],
};

const STUDENT_MODE_HINTS: Record<string, string> = {
  finetune: "the whole strong model is finetuned (student and ceiling)",
  probe: "logistic probe on the strong model's frozen last-layer features",
};

/** A ladder to run on: the lab's own, or registered models sharing one tokenizer, ordered by parameters. */
interface LadderChoice {
  /** "" for the lab's ladder, else "tokenizer:" and the tokenizer's id. */
  value: string;
  label: string;
  models: ModelListing[];
  /** The request's `ladder`: the models' names; absent for the lab's ladder (the server's default). */
  names?: string[];
}

/** The lab's ladder, then one choice per tokenizer that two or more usable registered models share. */
function ladderChoices(listed: ModelListing[]): LadderChoice[] {
  const byTokenizer = new Map<string, ModelListing[]>();
  for (const m of listed) {
    if (m.source !== "imported" || m.status !== "imported" || !m.imported) continue;
    byTokenizer.set(m.imported.tokenizer, [...byTokenizer.get(m.imported.tokenizer) ?? [], m]);
  }
  const own = [...byTokenizer].filter(([, models]) => models.length >= 2).map(([tokenizer, models]) => {
    const ordered = models.toSorted((a, b) => a.params - b.params);
    const names = ordered.map((m) => m.name);
    return {
      value: `tokenizer:${tokenizer}`,
      label: `yours (${tokenizer}): ${names.join(", ")}`,
      models: ordered,
      names,
    };
  });
  return [
    { value: "", label: "the lab's ladder", models: listed.filter((m) => m.source !== "imported") },
    ...own,
  ];
}

/** A model experiments can use as it is: a pretrained size of the lab's ladder or a registered folder. */
const isReady = (m: ModelListing | undefined) => m?.status === "pretrained" || m?.status === "imported";

/** The task, weak and strong the form submits: the user's choice, else the defaults where listed. */
interface Chosen {
  task: string;
  weak: string;
  strong: string;
}

/**
 * The strong model's default: the usual one when it is pretrained, else the largest pretrained size above the
 * weak one, else the usual one (the form then says which sizes are not pretrained).
 */
function defaultStrong(models: ModelListing[], weak: string): string {
  const sizeNames = models.map((m) => m.name);
  const usual = sizeNames.includes(DEFAULT_EXPERIMENT.strong)
    ? DEFAULT_EXPERIMENT.strong
    : sizeNames[Math.min(2, sizeNames.length - 1)] ?? "";
  const pretrained = (name: string) => isReady(models.find((m) => m.name === name));
  if (pretrained(usual)) return usual;
  const above = sizeNames.slice(sizeNames.indexOf(weak) + 1).filter(pretrained);
  return above.at(-1) ?? usual;
}

function choose(values: FormValues, taskNames: string[], models: ModelListing[]): Chosen {
  const sizeNames = models.map((m) => m.name);
  const listed = (want: string, names: string[], otherwise: string | undefined) =>
    names.includes(want) ? want : otherwise ?? "";
  const weak = values.weak || listed(DEFAULT_EXPERIMENT.weak, sizeNames, sizeNames[0]);
  return {
    task: values.task || listed(DEFAULT_EXPERIMENT.task, taskNames, taskNames[0]),
    weak,
    strong: values.strong || defaultStrong(models, weak),
  };
}

const isPairwiseTask = (tasks: TaskListing[], name: string) =>
  tasks.find((t) => t.name === name)?.format === "pairwise";

/** The recipe options the user set; the others stay out of the request. */
const chosenRecipe = (recipe: Record<RecipeOption, string>) =>
  Object.fromEntries(Object.entries(recipe).filter(([, value]) => value !== ""));

const optionalNumber = (key: string, text: string) =>
  parseOptionalNumber(text) !== undefined ? { [key]: parseOptionalNumber(text) } : {};

/** The request bodies to send (one per seed for experiments, one sweep) and what is wrong with them. */
function requestBodies(
  mode: Mode,
  values: FormValues,
  chosen: Chosen,
  ladder: LadderChoice,
  pairwise: boolean,
): { bodies: unknown[]; found: FieldErrors } {
  const sizeNames = ladder.models.map((m) => m.name);
  const seedList = parseNumberList(values.seeds);
  const common = {
    ...(ladder.names ? { ladder: ladder.names } : {}),
    ...(values.name.trim() ? { name: values.name.trim() } : {}),
    ...optionalNumber("epochs", values.epochs),
    ...optionalNumber("maxExamples", values.maxExamples),
    studentMode: values.studentMode,
    probes: values.probes,
    control: values.control,
    leakage: values.leakage,
    // The probe student has no trunk to finetune: the schema refuses the recipe with it.
    ...(values.studentMode === "finetune" ? chosenRecipe(values.recipe) : {}),
  };
  const found: FieldErrors = {};
  if (seedList.length === 0) found.seeds = "enter at least one seed, e.g. 0 or 0, 1, 2";
  else if (new Set(seedList).size !== seedList.length) {
    found.seeds = "a seed is listed twice: each seed runs once (a repeat reruns the same experiment)";
  }
  if (mode === "sweep") {
    const body = {
      ...common,
      tasks: values.sweepTasks,
      sizes: values.sweepSizes,
      methods: values.sweepMethods,
      seeds: seedList,
    };
    const parsed = SweepCreate.safeParse(body);
    if (!parsed.success) Object.assign(found, issuesToFieldErrors(parsed.error.issues), found);
    return { bodies: [body], found };
  }
  const bodies: unknown[] = [];
  for (const seed of seedList.length > 0 ? seedList : [0]) {
    const body = {
      ...common,
      ...chosen,
      method: values.method,
      seed,
      // A pairwise task has no prompting baselines: its field is disabled and its value stays home.
      ...(pairwise ? {} : optionalNumber("promptingShots", values.promptingShots)),
      // Generative settings go only with the generative method (the schema refuses them otherwise).
      ...(values.method === "generative"
        ? { generativeBase: values.generativeBase, ...optionalNumber("lmEpochs", values.lmEpochs) }
        : {}),
    };
    const parsed = ExperimentCreate.safeParse(body);
    if (!parsed.success) {
      Object.assign(found, issuesToFieldErrors(parsed.error.issues, { seed: "seeds" }), found);
    }
    bodies.push(body);
  }
  // The same ladder-order rule the server applies, checked here to answer before a round trip.
  const notSmaller = pairError(sizeNames, chosen.weak, chosen.strong);
  if (!found.strong && notSmaller) found.strong = notSmaller;
  return { bodies, found };
}

function ExperimentFields(
  { values, set, errors, chosen, tasks, models }: {
    values: FormValues;
    set: SetValue;
    errors: FieldErrors;
    chosen: Chosen;
    tasks: TaskListing[];
    models: ModelListing[];
  },
) {
  const sizeOptions = models.map((m) => ({ value: m.name, label: `${m.name} (${modelStatusWord(m)})` }));
  const plain = (names: readonly string[]) => names.map((n) => ({ value: n, label: n }));
  const generative = values.method === "generative";
  const pairwise = isPairwiseTask(tasks, chosen.task);
  return (
    <div class="form-grid">
      <SelectField
        id="task"
        label="Task"
        error={errors.task}
        hint={tasks.find((t) => t.name === chosen.task)?.description}
        value={chosen.task}
        onValue={(v) => set("task", v)}
        options={tasks.map((t) => ({ value: t.name, label: taskLabel(t.name, t.format) }))}
      />
      <SelectField
        id="weak"
        label="Weak model (supervisor)"
        error={errors.weak}
        value={chosen.weak}
        onValue={(v) => set("weak", v)}
        options={sizeOptions}
      />
      <SelectField
        id="strong"
        label="Strong model (student)"
        error={errors.strong}
        value={chosen.strong}
        onValue={(v) => set("strong", v)}
        options={sizeOptions}
      />
      <SelectField
        id="method"
        label="Method"
        error={errors.method}
        value={values.method}
        onValue={(v) => set("method", v)}
        options={plain(METHOD_NAMES)}
      />
      {generative && (
        <SelectField
          id="generativeBase"
          label="Loss after LM finetuning"
          error={errors.generativeBase}
          hint="generative: the student's loss once the LM finetuning is done"
          value={values.generativeBase}
          onValue={(v) => set("generativeBase", v)}
          options={plain(GENERATIVE_BASES)}
        />
      )}
      {generative && (
        <TextField
          id="lmEpochs"
          label="LM finetuning epochs (optional)"
          error={errors.lmEpochs}
          hint="default 2"
          value={values.lmEpochs}
          onValue={(v) => set("lmEpochs", v)}
          numeric
        />
      )}
      <TextField
        id="promptingShots"
        label="Prompting baselines, k (optional)"
        error={errors.promptingShots}
        hint={pairwise ? NO_PROMPTING_HINT : "zero-shot and k-shot accuracy of the pretrained strong model"}
        disabled={pairwise}
        value={pairwise ? "" : values.promptingShots}
        onValue={(v) => set("promptingShots", v)}
        numeric
      />
    </div>
  );
}

function SweepFields(
  { values, set, errors, tasks, sizeNames }: {
    values: FormValues;
    set: SetValue;
    errors: FieldErrors;
    tasks: TaskListing[];
    sizeNames: string[];
  },
) {
  const suites = Object.keys(SUITE_LABELS);
  const labels = {
    ...Object.fromEntries(tasks.map((t) => [t.name, taskLabel(t.name, t.format)])),
    ...SUITE_LABELS,
  };
  return (
    <div class="form-stack">
      <CheckboxGroup
        id="tasks"
        legend="Tasks"
        options={[...suites, ...tasks.map((t) => t.name).filter((name) => !suites.includes(name))]}
        labels={labels}
        selected={values.sweepTasks}
        onChange={(v) => set("sweepTasks", v)}
        error={errors.tasks}
      />
      <CheckboxGroup
        id="sizes"
        legend="Sizes (every weak < strong pair runs)"
        options={sizeNames}
        selected={values.sweepSizes}
        onChange={(v) => set("sweepSizes", v)}
        error={errors.sizes}
      />
      <CheckboxGroup
        id="methods"
        legend="Methods"
        options={[...METHOD_NAMES]}
        selected={values.sweepMethods}
        onChange={(v) => set("sweepMethods", v)}
        error={errors.methods}
      />
    </div>
  );
}

const RECIPE_LABELS: Record<RecipeOption, string> = {
  embeddings: "Embeddings",
  headInit: "Class head starts",
  decayTo: "Weight decay toward",
};

/** The finetuning recipe: one select per option, unset by default (the server's default applies). */
function RecipeFields({ values, set, errors }: { values: FormValues; set: SetValue; errors: FieldErrors }) {
  return (
    <fieldset class="field" id="recipe">
      <legend>Finetuning recipe (every finetuned model: weak, ceiling, student)</legend>
      <div class="form-grid">
        {RECIPE_OPTIONS.map((key) => (
          <SelectField
            key={key}
            id={key}
            label={RECIPE_LABELS[key]}
            error={errors[key]}
            hint={FINETUNE_RECIPE[key].help}
            value={values.recipe[key]}
            onValue={(v) => set("recipe", { ...values.recipe, [key]: v })}
            options={[
              { value: "", label: "server default" },
              ...FINETUNE_RECIPE[key].values.map((v) => ({ value: v, label: v })),
            ]}
          />
        ))}
      </div>
    </fieldset>
  );
}

/** Settings both an experiment and a sweep take. */
function TrainingFields(
  { mode, values, set, errors }: { mode: Mode; values: FormValues; set: SetValue; errors: FieldErrors },
) {
  return (
    <>
      <div class="form-grid">
        <TextField
          id="seeds"
          label="Seeds"
          error={errors.seeds}
          hint={mode === "experiment" ? "one experiment per seed, e.g. 0, 1, 2" : "e.g. 0, 1, 2"}
          value={values.seeds}
          onValue={(v) => set("seeds", v)}
          numeric
        />
        <TextField
          id="epochs"
          label="Epochs (optional)"
          error={errors.epochs}
          hint="default: the task's setting"
          value={values.epochs}
          onValue={(v) => set("epochs", v)}
          numeric
        />
        <SelectField
          id="studentMode"
          label="Student mode"
          error={errors.studentMode}
          hint={STUDENT_MODE_HINTS[values.studentMode]}
          value={values.studentMode}
          onValue={(v) => set("studentMode", v)}
          options={STUDENT_MODES.map((m) => ({ value: m, label: m }))}
        />
        <TextField
          id="maxExamples"
          label="Examples per split (optional)"
          error={errors.maxExamples}
          hint="a seeded sample for quick runs; default: all"
          value={values.maxExamples}
          onValue={(v) => set("maxExamples", v)}
          numeric
        />
        <TextField
          id="name"
          label="Name (optional)"
          error={errors.name}
          value={values.name}
          onValue={(v) => set("name", v)}
        />
      </div>
      {values.studentMode === "finetune" && <RecipeFields values={values} set={set} errors={errors} />}
      <div class="form-row">
        <label class="checkbox">
          <input
            type="checkbox"
            checked={values.probes}
            onChange={(e) => set("probes", (e.target as HTMLInputElement).checked)}
          />
          linear probes per layer (saliency)
        </label>
        <label class="checkbox">
          <input
            type="checkbox"
            checked={values.control}
            onChange={(e) => set("control", (e.target as HTMLInputElement).checked)}
          />
          random-init control (the strong model never pretrained)
        </label>
        <label class="checkbox">
          <input
            type="checkbox"
            checked={values.leakage}
            onChange={(e) => set("leakage", (e.target as HTMLInputElement).checked)}
          />
          let test items into pretraining (leakage)
        </label>
      </div>
    </>
  );
}

/** Which models the weak and strong selects (and a sweep's sizes) offer. */
function LadderField(
  { choices, value, onValue }: { choices: LadderChoice[]; value: string; onValue: (value: string) => void },
) {
  return (
    <div class="form-grid">
      <SelectField
        id="ladder"
        label="Ladder"
        hint={choices.length > 1
          ? "your registered models run as a ladder when they share a tokenizer"
          : "register two Hugging Face GPT-2 folders with one tokenizer on the Models page to run on your own"}
        value={value}
        onValue={onValue}
        options={choices.map((c) => ({ value: c.value, label: c.label }))}
      />
    </div>
  );
}

function ModeChoice({ mode, onMode }: { mode: Mode; onMode: (mode: Mode) => void }) {
  return (
    <div class="segmented" role="radiogroup" aria-label="What to start">
      {(["experiment", "sweep"] as const).map((m) => (
        <label key={m} class={mode === m ? "selected" : ""}>
          <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => onMode(m)} />
          {m === "experiment" ? "One experiment" : "Sweep (all pairs)"}
        </label>
      ))}
    </div>
  );
}

function UnpretrainedNotice({ sizes, none }: { sizes: string[]; none: boolean }) {
  if (sizes.length === 0) return null;
  return (
    <p class="notice small" data-testid="unpretrained">
      {none ? "No size is pretrained yet, so the strong model cannot default to one. " : ""}
      Not pretrained yet: {[...new Set(sizes)].join(", ")}. Pretrain them on the <a href="/models">Models</a>
      {" "}
      page (or <Cmd>deno task lab pretrain --size {sizes[0]}</Cmd>) first.
    </p>
  );
}

/** Posts each body in turn; the created experiments, or the first error. */
async function startAll(mode: Mode, bodies: unknown[]): Promise<Experiment[]> {
  const created: Experiment[] = [];
  for (const body of bodies) {
    const path = mode === "experiment" ? "/experiments" : "/sweeps";
    created.push((await apiPost<{ experiment: Experiment }>(path, body)).experiment);
  }
  return created;
}

export function ExperimentForm() {
  const tasks = useResource<TaskListing[]>("/tasks");
  const listed = useResource<ModelListing[]>("/models");
  const [mode, setMode] = useState<Mode>("experiment");
  const [values, setValues] = useState<FormValues>(INITIAL_VALUES);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState<string>();
  const set: SetValue = (key, value) => setValues((previous) => ({ ...previous, [key]: value }));
  const choices = ladderChoices(listed.data ?? []);
  const ladder = choices.find((c) => c.value === values.ladder) ?? choices[0];
  const models = { ...listed, data: listed.data && ladder.models };
  const chooseLadder = (value: string) => {
    const next = choices.find((c) => c.value === value) ?? choices[0];
    // Weak and strong fall back to the new ladder's defaults; a sweep takes all of its sizes.
    setValues((previous) => ({
      ...previous,
      ladder: value,
      weak: "",
      strong: "",
      sweepSizes: next.names ?? INITIAL_VALUES.sweepSizes,
    }));
  };

  const taskNames = tasks.data?.map((t) => t.name) ?? [];
  const sizeNames = models.data?.map((m) => m.name) ?? [];
  const chosen = choose(values, taskNames, models.data ?? []);
  const signedOut = !apiToken.value;

  const submit = async (event: Event) => {
    event.preventDefault();
    setStarted(undefined);
    const pairwise = isPairwiseTask(tasks.data ?? [], chosen.task);
    const { bodies, found } = requestBodies(mode, values, chosen, ladder, pairwise);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      const created = await startAll(mode, bodies);
      setStarted(`Started ${created.map((e) => `${mode} ${e.id}`).join(", ")}.`);
      if (created.length === 1) navigate(experimentPath(created[0]));
    } catch (err) {
      const rename: Record<string, string> = mode === "experiment"
        ? { seed: "seeds" }
        : { task: "tasks", tasks: "tasks" };
      setErrors(serverErrorToFieldErrors(err, rename));
    } finally {
      setBusy(false);
    }
  };

  if (tasks.error || models.error) return <ErrorBox message={(tasks.error ?? models.error)!} />;
  if (!tasks.data || !models.data) return <Loading what="tasks and models" />;
  const unpretrained = (mode === "experiment" ? [chosen.weak, chosen.strong] : values.sweepSizes)
    .filter((s) => !isReady(models.data!.find((m) => m.name === s)));

  return (
    <form
      class="form"
      onSubmit={submit}
      noValidate
      aria-label="Start an experiment or sweep"
      data-testid="experiment-form"
    >
      <LadderField choices={choices} value={ladder.value} onValue={chooseLadder} />
      <ModeChoice
        mode={mode}
        onMode={(m) => {
          setMode(m);
          setErrors({});
          // Seeds the user has not changed follow the mode's default.
          if (values.seeds === DEFAULT_SEEDS[mode]) set("seeds", DEFAULT_SEEDS[m]);
        }}
      />
      {mode === "experiment"
        ? (
          <ExperimentFields
            values={values}
            set={set}
            errors={errors}
            chosen={chosen}
            tasks={tasks.data}
            models={models.data}
          />
        )
        : (
          <SweepFields
            values={values}
            set={set}
            errors={errors}
            tasks={tasks.data}
            sizeNames={sizeNames}
          />
        )}
      <TrainingFields mode={mode} values={values} set={set} errors={errors} />
      <UnpretrainedNotice
        sizes={unpretrained}
        none={!models.data.some(isReady)}
      />
      {errors.form && <p class="field-error" role="alert" data-field="form">{errors.form}</p>}
      {started && <p class="success" role="status">{started}</p>}
      <div class="form-row">
        <button
          type="submit"
          disabled={busy || signedOut}
          aria-describedby={signedOut ? "start-signed-out" : undefined}
        >
          {busy ? "Starting…" : mode === "experiment" ? "Start experiment" : "Start sweep"}
        </button>
        {signedOut && (
          <span class="hint" id="start-signed-out" data-testid="start-signed-out">
            Starting needs the API token: paste it in <a href="/settings">Settings</a>.
          </span>
        )}
      </div>
    </form>
  );
}
