/**
 * Client-side routing: the address bar is the state (one URL per page, experiment and run), so deep links
 * and reloads work; the server answers index.html for any path that is not a file or /api.
 */
import { signal } from "@preact/signals";
import type { JobType } from "../../server/contract/jobs.ts";

export const currentPath = signal(location.pathname);
export const currentQuery = signal(new URLSearchParams(location.search));

function sync(): void {
  currentPath.value = location.pathname;
  currentQuery.value = new URLSearchParams(location.search);
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  sync();
  if (!opts.replace) scrollTo(0, 0);
}

/** This page's query ("?…", or "" for none) with one parameter set (or cleared, with ""), the others kept. */
export function queryWith(name: string, value: string): string {
  const query = new URLSearchParams(currentQuery.value);
  if (value) query.set(name, value);
  else query.delete(name);
  const search = query.toString();
  return search ? `?${search}` : "";
}

/** Sets (or clears, with "") one query parameter without adding a history entry. */
export function setQueryParam(name: string, value: string): void {
  navigate(currentPath.value + queryWith(name, value), { replace: true });
}

/**
 * Plain `<a href="/…">` links navigate in place; modified clicks, downloads, /api links and links to a part
 * of this page do not.
 */
export function startRouter(): void {
  addEventListener("popstate", sync);
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest?.("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api")) return;
    // An in-page link ("Skip to content", #section) is the browser's: it scrolls and moves focus there.
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}

/** Matches "/experiments/:id" style patterns; returns the named parts or null. */
export function matchRoute(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/").filter(Boolean);
  const have = path.split("/").filter(Boolean);
  if (want.length !== have.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return params;
}

/** The page of an experiment or a sweep (the API serves each under the same path below /api). */
export function experimentPath(e: { kind: "experiment" | "sweep"; id: number }): string {
  return `/${e.kind === "sweep" ? "sweeps" : "experiments"}/${e.id}`;
}

/**
 * The experiment or sweep a job records into (the API adds its id to the job's params): a w2s job's
 * experiment, the sweep of a sweep, sweep-cell or demo job; null for a job of no experiment.
 */
export function jobExperiment(
  job: { type: string; params: Record<string, unknown> },
): { kind: "experiment" | "sweep"; id: number } | null {
  const id = job.params.experimentId;
  if (typeof id !== "number") return null;
  return { kind: job.type === ("w2s" satisfies JobType) ? "experiment" : "sweep", id };
}
