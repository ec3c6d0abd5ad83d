/**
 * Tasks: the built-in and imported tasks with their format (classification or pairwise), and the import
 * screen — pick a JSONL file (one `{"txt": …, "hard_label": 0|1}` or one `{"prompt"?: …, "chosen": …,
 * "rejected": …}` per line), name it, upload it to POST /api/tasks/import. A rejected file shows the
 * server's message with the offending line quoted from the file.
 */
import { useState } from "preact/hooks";
import { TaskImportBody } from "../../server/contract/tasks.ts";
import { describedBy, Field, TextField } from "../components/fields.tsx";
import { Cmd, EmptyState, ErrorBox, Loading, PageHeader, Section } from "../components/ui.tsx";
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

function DeleteTask({ name, onDone }: { name: string; onDone: () => void }) {
  const [error, setError] = useState<string>();
  return (
    <span class="actions">
      <button
        type="button"
        class="danger-outline"
        aria-label={`Delete task ${name}`}
        onClick={() =>
          apiDelete(`/tasks/${encodeURIComponent(name)}`).then(onDone, (e) => setError(describeError(e)))}
      >
        Delete
      </button>
      {error && <span class="field-error" role="alert">{error}</span>}
    </span>
  );
}

export function TasksPage() {
  const tasks = useResource<TaskListing[]>("/tasks");
  return (
    <>
      <PageHeader title="Tasks" />
      <div class="two-columns">
        <Section title="Tasks" id="task-list">
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
                  {tasks.data.map((t) => (
                    <tr key={t.name} data-task={t.name}>
                      <th scope="row">{t.name}</th>
                      <td>{t.builtin ? "built in" : t.kind}</td>
                      <td>
                        <span class={`badge badge-${t.format}`}>{t.format}</span>
                      </td>
                      <td class="num">
                        {t.exampleCount === null ? "—" : `${t.exampleCount} ${FORMAT_UNITS[t.format]}`}
                      </td>
                      <td class="small">{t.description}</td>
                      <td>{!t.builtin && <DeleteTask name={t.name} onDone={tasks.reload} />}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Section>
        <Section title="Import a task" id="import">
          <ImportForm onImported={() => tasks.reload()} />
        </Section>
      </div>
    </>
  );
}
