/**
 * World: the lab's synthetic knowledge world (GET /api/world) — its definition, attributes and derived
 * facts, the tasks it offers with their split sizes and surface-cue check, and what each pretrained size
 * knows of it (recall by attribute, and by how often a fact was stated, at each snapshot). A world file
 * uploaded here becomes the lab's world (POST /api/world); a button goes back to the default (DELETE).
 */
import { useState } from "preact/hooks";
import { Field } from "../components/fields.tsx";
import { Cmd, EmptyState, ErrorBox, Loading, PageHeader, RecallCell, Section } from "../components/ui.tsx";
import { apiDelete, apiPost, describeError } from "../lib/api.ts";
import { formatNumber, formatParams, formatPercent, percentInterval } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { useResource } from "../lib/resource.ts";
import type { AttributeRecall, WorldModelKnowledge, WorldOverview } from "../../server/contract/world.ts";

type Snapshot = WorldModelKnowledge["snapshots"][number];

function Definition({ world }: { world: WorldOverview }) {
  const spec = world.spec;
  return (
    <>
      {spec.description && <p class="lede">{spec.description}</p>}
      <dl class="facts" data-testid="world-facts">
        <div>
          <dt>key</dt>
          <dd>{world.key}</dd>
        </div>
        <div>
          <dt>entities</dt>
          <dd>{world.entities.toLocaleString("en-US")}</dd>
        </div>
        <div>
          <dt>statements</dt>
          <dd>{world.statements.toLocaleString("en-US")}</dd>
        </div>
        <div>
          <dt>mentions</dt>
          <dd>
            {spec.mentions.min}–{spec.mentions.max} per {spec.mentions.per}, {spec.mentions.distribution}
          </dd>
        </div>
        <div>
          <dt>names</dt>
          <dd>{spec.nameTokens === "added" ? "one token each" : "GPT-2 pieces"}</dd>
        </div>
      </dl>
    </>
  );
}

function AttributesTable({ world }: { world: WorldOverview }) {
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="world-attributes">
        <thead>
          <tr>
            <th scope="col">attribute</th>
            <th scope="col" class="wide">values</th>
            <th scope="col">invented?</th>
            <th scope="col" class="num" title="statements of the fact per entity, on average">
              times stated
            </th>
          </tr>
        </thead>
        <tbody>
          {world.attributes.map((a) => (
            <tr key={a.name}>
              <th scope="row">{a.name}</th>
              <td class="small">{a.values.join(", ")}</td>
              <td>{a.invented ? "invented" : "listed"}</td>
              <td class="num">{formatNumber(a.meanStated, 2)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Each derived fact as rows "values of the attribute → derived value" (stated about values, never entities). */
function DerivedTable({ world }: { world: WorldOverview }) {
  if (world.derived.length === 0) return <p class="muted small">This world states no derived facts.</p>;
  const rows = world.derived.flatMap((d) => {
    const byValue = new Map<string, string[]>();
    for (const [value, to] of Object.entries(d.map)) byValue.set(to, [...(byValue.get(to) ?? []), value]);
    return [...byValue].map(([to, values]) => ({ fact: d.name, of: d.of, to, values }));
  });
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="world-derived">
        <thead>
          <tr>
            <th scope="col">fact</th>
            <th scope="col" class="wide">values</th>
            <th scope="col">→ derived value</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${r.fact}:${r.to}`}>
              <th scope="row">
                {r.fact} <span class="muted small">of {r.of}</span>
              </th>
              <td class="small">{r.values.join(", ")}</td>
              <td>{r.to}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function TasksTable({ world }: { world: WorldOverview }) {
  if (world.tasks.length === 0) return <EmptyState title="This world file defines no tasks." />;
  return (
    <div class="table-scroll">
      <table class="table" data-testid="world-tasks">
        <thead>
          <tr>
            <th scope="col">task</th>
            <th scope="col">difficulty</th>
            <th scope="col">type</th>
            <th scope="col" class="num">train1</th>
            <th scope="col" class="num">train2</th>
            <th scope="col" class="num">validation</th>
            <th scope="col" class="num">test</th>
            <th
              scope="col"
              title="a lookup on name pieces and template words, fitted on the finetuning splits, scored on test (95 % interval)"
            >
              surface-cue lookup
            </th>
          </tr>
        </thead>
        <tbody>
          {world.tasks.map((t) => (
            <tr key={t.name} data-task={t.name}>
              <th scope="row" title={t.description}>{t.name}</th>
              <td>{t.difficulty}</td>
              <td>{t.type}</td>
              <td class="num">{t.splits.train1}</td>
              <td class="num">{t.splits.train2}</td>
              <td class="num">{t.splits.validation}</td>
              <td class="num">{t.splits.test}</td>
              <td class="nowrap">
                <span class="num">
                  {formatNumber(t.surfaceCue.accuracy, 2)}{" "}
                  <span class="muted">
                    [{formatNumber(t.surfaceCue.low, 2)}, {formatNumber(t.surfaceCue.high, 2)}]
                  </span>
                </span>{" "}
                {t.surfaceCue.atChance
                  ? <span class="badge badge-chance">not above chance</span>
                  : (
                    <span class="badge badge-cue" title="the text gives the label away without any knowledge">
                      ABOVE CHANCE
                    </span>
                  )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Radio buttons in one strip (sizes, snapshots). */
function Choice<T extends string | number>(
  { label, options, value, onValue, format }: {
    label: string;
    options: T[];
    value: T;
    onValue: (value: T) => void;
    format: (value: T) => string;
  },
) {
  return (
    <div class="segmented" role="radiogroup" aria-label={label}>
      {options.map((o) => (
        <label key={o} class={o === value ? "selected" : ""}>
          <input type="radio" name={label} checked={o === value} onChange={() => onValue(o)} />
          {format(o)}
        </label>
      ))}
    </div>
  );
}

/** Rows = sizes, columns = attributes: each size's recall at its latest snapshot. */
function RecallBySize({ world }: { world: WorldOverview }) {
  const attributes = world.attributes.map((a) => a.name);
  const recallOf = (s: Snapshot, name: string) => s.attributes.find((a) => a.attribute === name);
  const majorityOf = (name: string) =>
    world.models.map((m) => recallOf(m.snapshots.at(-1)!, name)).find((r) => r)?.majority;
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="world-recall">
        <thead>
          <tr>
            <th scope="col">size</th>
            {attributes.map((name) => (
              <th
                key={name}
                scope="col"
                class="num"
                title="recall of the value; majority: always the commonest"
              >
                {name}
                <br />
                <span class="muted small">majority {formatPercent(majorityOf(name), 0)}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {world.models.map((m) => {
            const last = m.snapshots.at(-1)!;
            return (
              <tr key={m.size} data-size={m.size}>
                <th scope="row">
                  {m.size}{" "}
                  {last.pct !== 100 && (
                    <span class="tag">{formatPercent(last.pct / 100, 0)} of its budget</span>
                  )}
                </th>
                {attributes.map((name) => {
                  const recall = recallOf(last, name);
                  return <RecallCell key={name} recall={recall?.accuracy} ci={recall?.ci} n={recall?.n} />;
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Rows = attributes, columns = times stated: recall rises with how often a fact was stated. */
function RecallByTimesStated({ snapshot }: { snapshot: Snapshot }) {
  const labels = [...new Set(snapshot.attributes.flatMap((a) => a.buckets.map((b) => b.label)))];
  const cell = (a: AttributeRecall, label: string) => {
    const b = a.buckets.find((x) => x.label === label);
    if (!b || b.n === 0) return <span class="muted">—</span>;
    return (
      <span title={`95 % interval ${percentInterval(b.ci)}, Wilson over ${b.n} entities`}>
        {formatPercent(b.accuracy, 0)} <span class="muted small">n={b.n}</span>
      </span>
    );
  };
  return (
    <div class="table-scroll">
      <table class="table compact" data-testid="world-buckets">
        <thead>
          <tr>
            <th scope="col">attribute</th>
            {labels.map((l) => (
              <th key={l} scope="col" class="num" title="times the fact is stated in pretraining">
                stated {l}×
              </th>
            ))}
            <th scope="col" class="num">all</th>
          </tr>
        </thead>
        <tbody>
          {snapshot.attributes.map((a) => (
            <tr key={a.attribute}>
              <th scope="row">{a.attribute}</th>
              {labels.map((l) => <td key={l} class="num">{cell(a, l)}</td>)}
              <td class="num strong" title={percentInterval(a.ci) ?? undefined}>
                {formatPercent(a.accuracy, 0)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Knowledge({ world }: { world: WorldOverview }) {
  const [size, setSize] = useState<string>();
  const [pct, setPct] = useState<number>();
  if (world.models.length === 0) {
    return (
      <EmptyState title="No model of this world has a knowledge snapshot yet.">
        Pretrain the smallest size, then come back: <Cmd>deno task lab pretrain --size nano</Cmd> (or use the
        {" "}
        <a href="/models">Models</a>{" "}
        page). Pretraining keeps snapshots at 10, 30 and 100&nbsp;% of the budget; a size pretrained before
        snapshots existed needs <Cmd>--force</Cmd>.
      </EmptyState>
    );
  }
  const model = world.models.find((m) => m.size === size) ?? world.models.at(-1)!;
  const snapshot = model.snapshots.find((s) => s.pct === pct) ?? model.snapshots.at(-1)!;
  const asked = snapshot.attributes[0]?.n;
  return (
    <>
      <h3>Recall by attribute (latest snapshot of each size)</h3>
      <p class="muted small">
        Under each recall: its 95&nbsp;% interval, Wilson over the entities a snapshot asks about
        {asked ? ` (${asked})` : ""}.
      </p>
      <RecallBySize world={world} />
      <h3>Recall by times stated</h3>
      <div class="form-row">
        <Choice
          label="Size"
          options={world.models.map((m) => m.size)}
          value={model.size}
          onValue={setSize}
          format={(s) => s}
        />
        <Choice
          label="Snapshot"
          options={model.snapshots.map((s) => s.pct)}
          value={snapshot.pct}
          onValue={setPct}
          format={(p) => formatPercent(p / 100, 0)}
        />
        <span class="muted small">{formatParams(snapshot.tokens)} tokens seen</span>
      </div>
      <RecallByTimesStated snapshot={snapshot} />
    </>
  );
}

/** Upload a world file (it becomes the lab's world) or go back to the default world. */
function SwitchWorld({ onSwitched }: { onSwitched: () => void }) {
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async (action: () => Promise<WorldOverview>) => {
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    try {
      const world = await action();
      setDone(`The lab's world is now ${world.key} (${world.tasks.length} tasks).`);
      onSwitched();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const upload = (event: Event) => {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    run(async () => {
      const text = await file.text();
      input.value = "";
      let spec: unknown;
      try {
        spec = JSON.parse(text);
      } catch (err) {
        throw new Error(`${file.name} is not valid JSON: ${(err as Error).message}`);
      }
      return await apiPost<WorldOverview>("/world", spec);
    });
  };
  return (
    <div class="form" data-testid="world-switch">
      <p class="small">
        A world file (JSON, see{" "}
        <code>server/corpus/worlds/default.json</code>) defines the entities, their attributes, derived facts
        and tasks. Models stay under the world they were pretrained on; from a terminal:{" "}
        <Cmd>deno task lab world build --file F</Cmd>.
      </p>
      <div class="form-row">
        <Field id="world-file" label="Upload a world file">
          <input
            id="world-file"
            type="file"
            accept=".json,application/json"
            disabled={busy}
            onChange={upload}
          />
        </Field>
        <button
          type="button"
          class="secondary"
          disabled={busy}
          onClick={() => run(() => apiDelete<WorldOverview>("/world"))}
        >
          Back to the default world
        </button>
      </div>
      {error && <pre class="error-box" role="alert" data-testid="world-error">{error}</pre>}
      {done && <p class="success" role="status">{done}</p>}
    </div>
  );
}

export function WorldPage() {
  const world = useResource<WorldOverview>("/world", statusVersion.value);
  const w = world.data;
  return (
    <>
      <PageHeader title={w ? `World: ${w.spec.name}` : "World"} />
      {world.error && <ErrorBox message={world.error} onRetry={world.reload} />}
      {!w && !world.error && <Loading what="the world" />}
      {w && (
        <>
          <Section title="Definition" id="world-definition">
            <Definition world={w} />
            <div class="two-columns even">
              <div>
                <h3>Attributes</h3>
                <AttributesTable world={w} />
              </div>
              <div>
                <h3>Derived facts</h3>
                <DerivedTable world={w} />
              </div>
            </div>
          </Section>
          <Section title="Tasks" id="world-task-list">
            <TasksTable world={w} />
          </Section>
          <Section title="What each model knows" id="world-knowledge">
            <Knowledge world={w} />
          </Section>
        </>
      )}
      <Section title="Change the world" id="world-change">
        <SwitchWorld onSwitched={world.reload} />
      </Section>
    </>
  );
}
