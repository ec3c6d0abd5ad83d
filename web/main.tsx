/**
 * The lab's dashboard: a Preact single-page app served by the lab server from web/dist. The address bar
 * holds the state (one URL per page, experiment, sweep, run and job) and live job events arrive over SSE.
 */
import { render } from "preact";
import { adoptTokenFromUrl, apiToken } from "./lib/api.ts";
import { connectEvents, streamState } from "./lib/live.ts";
import { currentPath, matchRoute, startRouter } from "./lib/router.ts";
import { AgreementPage, ResultsPage, SaliencyPage } from "./pages/analysis.tsx";
import { CurvesPage } from "./pages/curves.tsx";
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

function App() {
  const path = currentPath.value;
  const section = NAV.find((n) => n.match.some((m) => path === m || path.startsWith(`${m}/`)));
  document.title = section ? `${section.label} · W2S lab` : "W2S lab";
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
        <nav aria-label="Pages">
          {NAV.map((n) => (
            <a key={n.href} href={n.href} aria-current={section === n ? "page" : undefined}>{n.label}</a>
          ))}
        </nav>
        <span class={`stream stream-${streamState.value}`} title="live job events" role="status">
          {STREAM_LABELS[streamState.value]}
        </span>
      </header>
      {!apiToken.value && path !== "/settings" && (
        <div class="banner" role="note">
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
startRouter();
connectEvents();
render(<App />, document.getElementById("app")!);
