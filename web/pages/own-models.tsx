/**
 * The Models page's "Your own models": Hugging Face GPT-2 folders registered beside the ladder (what each
 * needs to finetune on this adapter, its tokenizer and weights hash), and a form that registers one.
 */
import { useState } from "preact/hooks";
import { TextField } from "../components/fields.tsx";
import { Cmd, EmptyState, Section } from "../components/ui.tsx";
import { apiPost, ApiRequestError, describeError } from "../lib/api.ts";
import { apiToken } from "../lib/api.ts";
import { formatParams } from "../lib/format.ts";
import type { ModelListing } from "../../server/contract/models.ts";

const MIB = 1024 * 1024;

function formatBytes(bytes: number): string {
  return bytes >= 1024 * MIB ? `${(bytes / 1024 / MIB).toFixed(1)} GiB` : `${Math.ceil(bytes / MIB)} MiB`;
}

function RegisterForm({ onAdded }: { onAdded: () => void }) {
  const [name, setName] = useState("");
  const [dir, setDir] = useState("");
  const [error, setError] = useState<{ field?: "name" | "dir"; message: string }>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      await apiPost("/models/import", { name: name.trim(), dir: dir.trim() });
      setName("");
      setDir("");
      onAdded();
    } catch (err) {
      const message = describeError(err);
      const field = err instanceof ApiRequestError && /\bname\b/.test(message) && !/dir/.test(message)
        ? "name"
        : "dir";
      setError({ field, message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      class="form"
      onSubmit={submit}
      noValidate
      aria-label="Register a model"
      data-testid="own-model-form"
    >
      <TextField
        id="own-model-name"
        label="Name"
        hint="how experiments name it, e.g. gpt2-medium"
        error={error?.field === "name" ? error.message : undefined}
        value={name}
        onValue={setName}
      />
      <TextField
        id="own-model-dir"
        label="Folder on the server"
        hint="config.json + model.safetensors (+ vocab.json, merges.txt); nothing is downloaded"
        error={error?.field === "dir" ? error.message : undefined}
        value={dir}
        onValue={setDir}
      />
      <button type="submit" disabled={busy || !apiToken.value}>Register</button>
      {!apiToken.value && <p class="muted small">Sign in (Settings) to register models.</p>}
    </form>
  );
}

export function OwnModelsSection({ models, onAdded }: { models: ModelListing[]; onAdded: () => void }) {
  return (
    <Section title="Your own models" id="own-models">
      {models.length === 0
        ? (
          <EmptyState title="No models of your own registered.">
            Put a Hugging Face GPT-2 folder on this machine's disk and register it below or with{" "}
            <Cmd>deno task lab models add --name gpt2 --dir ~/models/gpt2</Cmd>. Models that share a tokenizer
            form a ladder for experiments (<Cmd>--ladder gpt2,gpt2-medium</Cmd>).
          </EmptyState>
        )
        : (
          <div class="table-scroll">
            <table class="table" data-testid="own-models">
              <thead>
                <tr>
                  <th scope="col">name</th>
                  <th scope="col" class="num">width</th>
                  <th scope="col" class="num">layers</th>
                  <th scope="col" class="num">parameters</th>
                  <th scope="col">tokenizer</th>
                  <th
                    scope="col"
                    class="num"
                    title="adapter memory to finetune at batch 1 and at the default batch"
                  >
                    memory to finetune
                  </th>
                  <th scope="col">weights sha-256</th>
                  <th scope="col">status</th>
                </tr>
              </thead>
              <tbody>
                {models.map((m) => (
                  <tr key={m.name}>
                    <th scope="row">{m.name}</th>
                    <td class="num">{m.width}</td>
                    <td class="num">{m.layers}</td>
                    <td class="num">{formatParams(m.params)}</td>
                    <td>{m.imported?.tokenizerFiles ?? "—"}</td>
                    <td class="num">
                      {m.imported
                        ? `${formatBytes(m.imported.memory.leastBytes)} · ${
                          formatBytes(m.imported.memory.defaultBatchBytes)
                        } at batch ${m.imported.memory.defaultBatch}`
                        : "—"}
                    </td>
                    <td>
                      <code title={m.imported?.sha256}>{m.imported?.sha256.slice(0, 12) ?? "—"}</code>
                    </td>
                    <td>{m.status === "broken" ? `broken: ${m.brokenReason}` : m.status}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      <RegisterForm onAdded={onAdded} />
    </Section>
  );
}
