/**
 * The lab's dashboard: a Preact single-page app served by the lab server from web/dist. The address bar
 * holds the state (one URL per page, experiment, sweep, run and job) and live job events arrive over SSE.
 */
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { adoptTokenFromUrl, apiToken } from "./lib/api.ts";
import { connectEvents, serverAnsweredAt, serverAway, streamState } from "./lib/live.ts";
import { currentPath, matchRoute, startRouter } from "./lib/router.ts";
import { AgreementPage, ResultsPage, SaliencyPage } from "./pages/analysis.tsx";
import { CurvesPage } from "./pages/curves.tsx";
import { RunsPage } from "./pages/runs.tsx";
import { ExperimentPage } from "./pages/experiment.tsx";
import { ExperimentsPage } from "./pages/experiments.tsx";
import { JobPage, JobsPage } from "./pages/jobs.tsx";
import { KernelsPage } from "./pages/kernels.tsx";
import { ModelsPage } from "./pages/models.tsx";
import { SettingsPage } from "./pages/settings.tsx";
import { TasksPage } from "./pages/tasks.tsx";
import { WorldPage } from "./pages/world.tsx";
import { EmptyState, PageHeader } from "./components/ui.tsx";

const NAV = [
  { href: "/experiments", label: "Experiments", match: ["/experiments", "/sweeps"] },
  { href: "/results", label: "Results", match: ["/results"] },
  { href: "/runs", label: "Training curves", match: ["/runs"] },
  { href: "/compare", label: "Compare runs", match: ["/compare"] },
  { href: "/agreement", label: "Agreement", match: ["/agreement"] },
  { href: "/saliency", label: "Saliency", match: ["/saliency"] },
  { href: "/models", label: "Models", match: ["/models"] },
  { href: "/tasks", label: "Tasks", match: ["/tasks"] },
  { href: "/world", label: "World", match: ["/world"] },
  { href: "/kernels", label: "Kernels", match: ["/kernels"] },
  { href: "/jobs", label: "Jobs", match: ["/jobs"] },
  { href: "/settings", label: "Settings", match: ["/settings"] },
];

function Page({ path }: { path: string }) {
  const id = (pattern: string) => {
    const params = matchRoute(pattern, path);
    const n = params ? Number(params.id) : NaN;
    return Number.isInteger(n) && n > 0 ? n : undefined;
  };
  if (path === "/" || path === "/experiments") return <ExperimentsPage />;
  const experimentId = id("/experiments/:id");
  if (experimentId) return <ExperimentPage key={`e${experimentId}`} id={experimentId} kind="experiment" />;
  const sweepId = id("/sweeps/:id");
  if (sweepId) return <ExperimentPage key={`s${sweepId}`} id={sweepId} kind="sweep" />;
  if (path === "/results") return <ResultsPage />;
  if (path === "/runs") return <CurvesPage />;
  if (path === "/compare") return <RunsPage />;
  const runId = id("/runs/:id");
  if (runId) return <CurvesPage key={`r${runId}`} runId={runId} />;
  if (path === "/agreement") return <AgreementPage />;
  if (path === "/saliency") return <SaliencyPage />;
  if (path === "/models") return <ModelsPage />;
  if (path === "/tasks") return <TasksPage />;
  if (path === "/world") return <WorldPage />;
  if (path === "/kernels") return <KernelsPage />;
  if (path === "/jobs") return <JobsPage />;
  const jobId = id("/jobs/:id");
  if (jobId) return <JobPage key={`j${jobId}`} id={jobId} />;
  if (path === "/settings") return <SettingsPage />;
  return (
    <>
      <PageHeader title="Page not found" />
      <EmptyState title={`Nothing lives at ${path}.`}>
        Go to the <a href="/experiments">Experiments</a> page.
      </EmptyState>
    </>
  );
}

const STREAM_LABELS = { live: "live", connecting: "connecting…", offline: "offline" } as const;

/** "the server is not answering — data shown is from 14:05" while requests get no answer. */
function ServerAwayBanner() {
  if (!serverAway.value) return null;
  const at = serverAnsweredAt.value;
  const time = at?.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  return (
    <div class="banner banner-away" role="alert" data-testid="server-away">
      The server is not answering —{" "}
      {time ? `data shown is from ${time}` : "nothing could be loaded"}. It reloads when the server answers
      again.
    </div>
  );
}

/** The page list: a bar (wrapping to a second row) above 900 px, behind a menu button at 900 px and below. */
function SiteNav({ section }: { section: (typeof NAV)[number] | undefined }) {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  // A chosen page closes the menu.
  useEffect(() => setOpen(false), [currentPath.value]);
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key !== "Escape" || !open) return;
    setOpen(false);
    button.current?.focus();
  };
  return (
    <div class="site-nav" onKeyDown={onKeyDown}>
      <button
        type="button"
        class="menu-button"
        ref={button}
        aria-expanded={open}
        aria-controls="site-nav-pages"
        onClick={() => setOpen(!open)}
      >
        {section ? section.label : "Menu"} <span aria-hidden="true">{open ? "▴" : "▾"}</span>
        <span class="visually-hidden">, menu of pages</span>
      </button>
      <nav aria-label="Pages" id="site-nav-pages" class={open ? "open" : undefined}>
        {NAV.map((n) => (
          <a key={n.href} href={n.href} aria-current={section === n ? "page" : undefined}>{n.label}</a>
        ))}
      </nav>
    </div>
  );
}

let titledPath = "";

function App() {
  const path = currentPath.value;
  const section = NAV.find((n) => n.match.some((m) => path === m || path.startsWith(`${m}/`)));
  // The section's name until the page's own header names it (components/ui.tsx PageHeader).
  if (titledPath !== path) {
    titledPath = path;
    document.title = section ? `${section.label} · W2S lab` : "W2S lab";
  }
  return (
    <>
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="topbar">
        <a href="/experiments" class="brand" aria-label="Weak-to-strong lab, home">
          <svg viewBox="0 0 16 16" width="22" height="22" aria-hidden="true">
            <rect width="16" height="16" rx="3" fill="#20252b" />
            <path d="M3 12 L7 6 L10 9 L13 3" stroke="#4fc3f7" stroke-width="2" fill="none" />
          </svg>
          W2S lab
        </a>
        <SiteNav section={section} />
        <span class={`stream stream-${streamState.value}`} title="live job events" role="status">
          {STREAM_LABELS[streamState.value]}
        </span>
      </header>
      <ServerAwayBanner />
      {!apiToken.value && path !== "/settings" && (
        <div class="banner" role="note" data-testid="sign-in-banner">
          Browsing is open. To start or cancel jobs, paste the API token in <a href="/settings">Settings</a>.
        </div>
      )}
      <main id="main" tabIndex={-1}>
        <Page path={path === "/" ? "/experiments" : path.replace(/\/+$/, "") || "/"} />
      </main>
    </>
  );
}

adoptTokenFromUrl();
// A sign-in link opened in a tab that already shows the dashboard changes only the hash.
addEventListener("hashchange", adoptTokenFromUrl);
startRouter();
connectEvents();
render(<App />, document.getElementById("app")!);
