/**
 * Tasks: the built-in and imported tasks with their format (classification or pairwise), and the import
 * screen — pick a JSONL file (one `{"txt": …, "hard_label": 0|1}` or one `{"prompt"?: …, "chosen": …,
 * "rejected": …}` per line), name it, upload it to POST /api/tasks/import. A rejected file shows the
 * server's message with the offending line quoted from the file.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { TaskImportBody } from "../../server/contract/tasks.ts";
import { describedBy, Field, TextField } from "../components/fields.tsx";
import {
  AskButton,
  AskQuestion,
  Cmd,
  EmptyState,
  ErrorBox,
  Loading,
  PageHeader,
  Section,
  useAsking,
} from "../components/ui.tsx";
import { apiDelete, apiPostRaw, ApiRequestError, describeError } from "../lib/api.ts";
import { type FieldErrors, issuesToFieldErrors } from "../lib/forms.ts";
import { useResource } from "../lib/resource.ts";
import { FORMAT_UNITS } from "../lib/task-format.ts";
import type { TaskListing } from "../../server/contract/tasks.ts";

/** A task name suggested by the file name ("My data.jsonl" → "my-data"). */
export function taskNameFromFile(fileName: string): string {
  return fileName.replace(/\.(jsonl|ndjson|json|txt)$/i, "").toLowerCase().replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "").slice(0, 64);
}

interface LoadedFile {
  name: string;
  text: string;
  lines: number;
}

/** The error of a rejected import, with the offending line of the file when the server names one. */
interface ImportError {
  message: string;
  line?: number;
  excerpt?: string;
}

function ImportForm({ onImported }: { onImported: (name: string) => void }) {
  const [file, setFile] = useState<LoadedFile>();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [importError, setImportError] = useState<ImportError>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();

  const pick = async (event: Event) => {
    const chosen = (event.target as HTMLInputElement).files?.[0];
    setImportError(undefined);
    setDone(undefined);
    if (!chosen) return setFile(undefined);
    const text = await chosen.text();
    setFile({ name: chosen.name, text, lines: text.split(/\r?\n/).filter((l) => l.trim() !== "").length });
    if (!name) setName(taskNameFromFile(chosen.name));
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setImportError(undefined);
    setDone(undefined);
    const body = {
      name: name.trim(),
      ...(description.trim() ? { description: description.trim() } : {}),
      jsonl: file?.text ?? "",
    };
    const parsed = TaskImportBody.safeParse(body);
    const found = parsed.success ? {} : issuesToFieldErrors(parsed.error.issues, { jsonl: "file" });
    if (!file) found.file = "choose a JSONL file";
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      // The file goes up as it is, so the server reads it line by line instead of as one JSON string.
      const query = new URLSearchParams({
        name: body.name,
        ...(body.description ? { description: body.description } : {}),
      });
      const created = await apiPostRaw<TaskListing>(`/tasks/import?${query}`, {
        text: body.jsonl,
        contentType: "application/x-ndjson",
      });
      const format = created.format;
      setDone(`Imported "${created.name}" (${format}) with ${created.exampleCount} ${FORMAT_UNITS[format]}.`);
      onImported(created.name);
    } catch (err) {
      const line = err instanceof ApiRequestError
        ? (err.details as { line?: number } | undefined)?.line
        : undefined;
      const excerpt = line ? file!.text.split(/\r?\n/)[line - 1]?.slice(0, 200) : undefined;
      if (err instanceof ApiRequestError && err.code === "task_exists") setErrors({ name: err.message });
      else setImportError({ message: describeError(err), line: line || undefined, excerpt });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="form" onSubmit={submit} noValidate aria-label="Import a task" data-testid="import-form">
      <div class="small" data-testid="import-formats">
        <p>One JSON object per line, every line in one of two formats:</p>
        <ul>
          <li>
            <strong>classification</strong> (openai/weak-to-strong): <code>txt</code> and{" "}
            <code>hard_label</code> (0 or 1); at least 20 examples with both labels.
            <pre class="line-excerpt">{'{"txt": "Paris is in France", "hard_label": 1}'}</pre>
          </li>
          <li>
            <strong>comparison</strong> (Anthropic HH, TRL), a pairwise task: <code>chosen</code>{" "}
            (the preferred text), <code>rejected</code> and an optional <code>prompt</code>{" "}
            before both; at least 20 comparisons.
            <pre class="line-excerpt">{'{"prompt": "Q: 2+2? A:", "chosen": " 4", "rejected": " 5"}'}</pre>
          </li>
        </ul>
        <p>
          From a terminal: <Cmd>deno task lab import --name N --file F.jsonl</Cmd>.
        </p>
      </div>
      <div class="form-grid">
        <Field
          id="file"
          label="JSONL file"
          error={errors.file}
          hint={file ? `${file.name}: ${file.lines} non-empty lines` : undefined}
        >
          <input
            {...describedBy("file", errors.file, file ? "file" : undefined)}
            type="file"
            accept=".jsonl,.ndjson,.json,.txt,application/x-ndjson,application/json,text/plain"
            onChange={pick}
          />
        </Field>
        <TextField id="task-name" label="Task name" error={errors.name} value={name} onValue={setName} />
        <TextField
          id="description"
          label="Description (optional)"
          error={errors.description}
          value={description}
          onValue={setDescription}
        />
      </div>
      {importError && (
        <div class="error-box" role="alert" data-testid="import-error">
          <p>{importError.message}</p>
          {importError.line !== undefined && importError.excerpt !== undefined && (
            <pre class="line-excerpt"><span class="line-number">{importError.line}</span> {importError.excerpt}</pre>
          )}
        </div>
      )}
      {done && <p class="success" role="status">{done}</p>}
      <div class="form-row">
        <button type="submit" disabled={busy}>{busy ? "Importing…" : "Import task"}</button>
      </div>
    </form>
  );
}

/**
 * One task of the list; an imported one has Delete, which asks first in a row under it. DELETE
 * /api/tasks/:name removes the task and its stored examples from the lab's database; the experiments, runs
 * and results that used it stay (and keep its name). The server refuses while a queued or running job uses
 * the task.
 */
function TaskRow({ task: t, onDeleted }: { task: TaskListing; onDeleted: (message: string) => void }) {
  const asking = useAsking();
  const examples = `${t.exampleCount === null ? "" : `${t.exampleCount} `}${FORMAT_UNITS[t.format]}`;
  const name = `Delete task ${t.name}`;
  return (
    <>
      <tr data-task={t.name}>
        <th scope="row">{t.name}</th>
        <td class="nowrap">{t.builtin ? "built in" : t.kind}</td>
        <td>
          <span class={`badge badge-${t.format}`}>{t.format}</span>
        </td>
        <td class="num">{t.exampleCount === null ? "—" : examples}</td>
        <td class="small">{t.description}</td>
        <td>{!t.builtin && <AskButton asking={asking} label="Delete" name={name} />}</td>
      </tr>
      {asking.open && (
        <tr class="confirm-row">
          <td colSpan={6}>
            <AskQuestion
              asking={asking}
              name={name}
              yes="Yes, delete"
              onConfirm={async () => {
                await apiDelete(`/tasks/${encodeURIComponent(t.name)}`);
                onDeleted(`Deleted task "${t.name}" and its ${examples}.`);
              }}
            >
              Delete task <strong>{t.name}</strong>? Its {examples}{" "}
              go from the lab; the experiments, runs and results that used it stay. Only importing its file
              again brings it back.
            </AskQuestion>
          </td>
        </tr>
      )}
    </>
  );
}

export function TasksPage() {
  const tasks = useResource<TaskListing[]>("/tasks");
  const [deleted, setDeleted] = useState<string>();
  // The deleted row took the focus with it: the message that says what went gets it.
  const deletedNote = useRef<HTMLParagraphElement>(null);
  useEffect(() => deletedNote.current?.focus(), [deleted]);
  const onDeleted = (message: string) => (setDeleted(message), tasks.reload());
  return (
    <>
      <PageHeader title="Tasks" />
      <div class="two-columns">
        <Section title="Tasks" id="task-list">
          {deleted && (
            <p class="success" role="status" tabIndex={-1} ref={deletedNote} data-testid="task-deleted">
              {deleted}
            </p>
          )}
          {tasks.error && <ErrorBox message={tasks.error} onRetry={tasks.reload} />}
          {!tasks.data && !tasks.error && <Loading what="tasks" />}
          {tasks.data?.length === 0 && <EmptyState title="No tasks." />}
          {tasks.data && tasks.data.length > 0 && (
            <div class="table-scroll">
              <table class="table" data-testid="task-list">
                <thead>
                  <tr>
                    <th scope="col">name</th>
                    <th scope="col">kind</th>
                    <th scope="col">format</th>
                    <th scope="col" class="num">size</th>
                    <th scope="col" class="wide">description</th>
                    <th scope="col">
                      <span class="visually-hidden">actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {tasks.data.map((t) => <TaskRow key={t.name} task={t} onDeleted={onDeleted} />)}
                </tbody>
              </table>
            </div>
          )}
        </Section>
        <Section title="Import a task" id="import">
          <ImportForm onImported={() => (setDeleted(undefined), tasks.reload())} />
        </Section>
      </div>
    </>
  );
}
