/** Settings: the API token for starting and cancelling things (kept in this browser), and server facts. */
import { useState } from "preact/hooks";
import { describedBy, Field } from "../components/fields.tsx";
import { PageHeader, Section } from "../components/ui.tsx";
import { apiPost, ApiRequestError, apiToken, describeError, saveToken } from "../lib/api.ts";
import { useResource } from "../lib/resource.ts";

export function SettingsPage() {
  const [draft, setDraft] = useState(apiToken.value);
  const [shown, setShown] = useState(false);
  const [status, setStatus] = useState<{ ok: boolean; text: string }>();
  const health = useResource<{ ok: boolean; db: string }>("/health");

  const check = async () => {
    // An empty job request is refused for its body (400) once the token is accepted, and for the token (401)
    // otherwise; either way nothing is created.
    try {
      await apiPost("/jobs", {});
      setStatus({ ok: true, text: "Token accepted." });
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 400) {
        setStatus({ ok: true, text: "Token accepted." });
      } else setStatus({ ok: false, text: describeError(err) });
    }
  };
  const save = (event: Event) => {
    event.preventDefault();
    saveToken(draft);
    void check();
  };

  return (
    <>
      <PageHeader title="Settings" />
      <Section title="API token" id="token">
        <p>
          Reading needs nothing; starting, cancelling and deleting need the server's token. It is printed when
          the server starts for the first time and stored in <code>&lt;data dir&gt;/token</code> (default{" "}
          <code>./data/token</code>). It stays in this browser only.
        </p>
        <form class="form" onSubmit={save} aria-label="API token">
          <Field id="api-token" label="Token" error={status && !status.ok ? status.text : undefined}>
            <div class="input-with-button">
              <input
                {...describedBy("api-token", status && !status.ok ? status.text : undefined)}
                // Preact types each input type separately; both are plain text inputs here.
                type={(shown ? "text" : "password") as "text"}
                autoComplete="off"
                value={draft}
                onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
              />
              <button type="button" class="secondary" onClick={() => setShown(!shown)} aria-pressed={shown}>
                {shown ? "Hide" : "Show"}
              </button>
            </div>
          </Field>
          <div class="form-row">
            <button type="submit">Save</button>
            <button type="button" class="secondary" onClick={check}>Check</button>
            <button
              type="button"
              class="secondary"
              onClick={() => (saveToken(""), setDraft(""), setStatus(undefined))}
            >
              Forget
            </button>
          </div>
          {status?.ok && <p class="success" role="status">{status.text}</p>}
        </form>
      </Section>
      <Section title="Server" id="server">
        <p>
          Database:{" "}
          {health.data?.db ?? (health.error ? `unreachable (${health.error})` : "…")}. API reference:{" "}
          <a href="/api/docs" target="_blank">/api/docs</a> ·{" "}
          <a href="/api/openapi.json" target="_blank">openapi.json</a>
        </p>
      </Section>
    </>
  );
}
