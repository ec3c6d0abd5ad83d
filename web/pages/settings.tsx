/** Settings: the API token for starting and cancelling things (kept in this browser), and server facts. */
import { useEffect, useState } from "preact/hooks";
import { describedBy, Field } from "../components/fields.tsx";
import { PageHeader, Section } from "../components/ui.tsx";
import { apiToken, checkToken, saveToken } from "../lib/api.ts";
import { useResource } from "../lib/resource.ts";

export function SettingsPage() {
  const [draft, setDraft] = useState(apiToken.value);
  const [shown, setShown] = useState(false);
  const [status, setStatus] = useState<{ ok: boolean; text: string }>();
  const health = useResource<{ ok: boolean; db: string }>("/health");

  const check = async () => {
    const answer = await checkToken();
    setStatus(answer.ok ? { ok: true, text: "Token accepted." } : { ok: false, text: answer.message });
  };
  // A stored token (pasted earlier or brought by a sign-in link) is checked as soon as the page opens.
  // A sign-in link opened while this page shows brings a new token: show it and check it too.
  useEffect(() => {
    setDraft(apiToken.value);
    if (apiToken.value) void check();
  }, [apiToken.value]);
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
          Reading needs nothing; starting, cancelling and deleting need the server's token. The first start of
          the server prints it with a sign-in link (<code data-testid="sign-in-address">
            {location.origin}/#token=…
          </code>) that stores it here in one click; it is kept in <code>&lt;data dir&gt;/token</code>{" "}
          (default <code>./data/token</code>). It stays in this browser only.
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
