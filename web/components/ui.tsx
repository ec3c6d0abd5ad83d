/**
 * Small shared pieces: status badges, live progress bars, empty and error states, page headers, a
 * destructive action that asks first.
 */
import { type ComponentChildren, toChildArray, type VNode } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";
import { describeError } from "../lib/api.ts";
import { liveJobs } from "../lib/live.ts";
import { formatDuration, formatPercent, percentInterval, readableKey } from "../lib/format.ts";
import { type JobProgress, type JobStatus, progressCount } from "../../server/contract/jobs.ts";

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function ProgressBar({ fraction, label }: { fraction: number; label: string }) {
  const pct = Math.max(0, Math.min(1, fraction)) * 100;
  return (
    <div
      class="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(pct)}
    >
      <div class="progress-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}

/**
 * A job's status with its progress bar, step count, ETA and latest figures. The newest live event wins over
 * the row the page loaded. `compact` leaves out the message and figures (a table cell: the job's page has them).
 */
export function JobLiveProgress(
  { jobId, status, progress, error, compact = false }: {
    jobId: number | null;
    status: JobStatus | string;
    progress?: JobProgress | null;
    error?: string | null;
    compact?: boolean;
  },
) {
  const live = jobId !== null ? liveJobs.value.get(jobId) : undefined;
  const liveNewer = live && (status === "queued" || status === "running" || live.status !== "running");
  const shownStatus = liveNewer ? live.status : status;
  const step = (liveNewer ? live.step : undefined) ?? progress?.step;
  const total = (liveNewer ? live.total : undefined) ?? progress?.total;
  const unit = (liveNewer ? live.unit : undefined) ?? progress?.unit;
  const eta = (liveNewer ? live.etaSeconds : undefined) ?? progress?.etaSeconds;
  const message = (liveNewer ? live.message : undefined) ?? progress?.message;
  const figures = (liveNewer ? live.metrics : undefined) ?? progress?.metrics;
  const shownError = (liveNewer ? live.error : undefined) ?? error;
  const fraction = step !== undefined && total ? step / total : shownStatus === "done" ? 1 : 0;
  return (
    <div class="job-progress" data-job-id={jobId ?? undefined} data-status={shownStatus}>
      <div class="job-progress-line">
        <StatusBadge status={shownStatus} />
        {(shownStatus === "running" || shownStatus === "queued" || step !== undefined) && (
          <ProgressBar fraction={fraction} label={`job ${jobId ?? ""} progress`} />
        )}
        {step !== undefined && total !== undefined && (
          <span class="muted progress-text" data-testid="progress-text">
            {progressCount(step, total, unit)}
            {shownStatus === "running" && eta !== undefined && <>{" · ETA "}{formatDuration(eta)}</>}
          </span>
        )}
      </div>
      {!compact && (message || figures) && shownStatus === "running" && (
        <div class="muted small">
          {/* One line of "message · name value · name value", never run together. */}
          {[
            ...(message ? [<span key="message" class="message">{message}</span>] : []),
            ...Object.entries(figures ?? {}).slice(0, 4).map(([k, v]) => (
              <span key={k} class="figure">
                {readableKey(k)} {Number.isFinite(v) ? v.toFixed(4) : String(v)}
              </span>
            )),
          ].flatMap((part, i) => i === 0 ? [part] : [" · ", part])}
        </div>
      )}
      {shownStatus === "failed" && shownError && <p class="job-error" role="alert">{shownError}</p>}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function ErrorBox({ message, onRetry }: { message: string; onRetry?: () => void }) {
  return (
    <div class="error-box" role="alert">
      <p>{message}</p>
      {onRetry && <button type="button" onClick={onRetry}>Try again</button>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" aria-live="polite">Loading {what}…</p>;
}

/** The page's heading, which also names the browser tab. */
export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  useEffect(() => void (document.title = `${title} · W2S lab`), [title]);
  return (
    <header class="page-header">
      <h1>{title}</h1>
      {children && <div class="page-actions">{children}</div>}
    </header>
  );
}

export function Section(
  { title, children, id }: { title: string; children: ComponentChildren; id?: string },
) {
  return (
    <section class="card" id={id} aria-labelledby={id ? `${id}-title` : undefined}>
      <h2 id={id ? `${id}-title` : undefined}>{title}</h2>
      {children}
    </section>
  );
}

/**
 * One line of code the user can copy. Each word is kept whole (styles.css: `.cmd-word`): a narrow screen
 * wraps the command between words, never inside a flag ("--dir"), unless one word is wider than the line.
 */
export function Cmd({ children }: { children: ComponentChildren }) {
  // Adjacent text ("--size " and a size's name) joined first, so a word split over two children stays one.
  const parts: Array<string | VNode> = [];
  for (const child of toChildArray(children)) {
    const last = parts.length - 1;
    if (typeof child === "object") parts.push(child);
    else if (typeof parts[last] === "string") parts[last] += String(child);
    else parts.push(String(child));
  }
  return (
    <code class="cmd">
      {parts.flatMap((part, p) =>
        typeof part === "string"
          ? part.split(/(\s+)/).filter(Boolean).map((w, i) =>
            /\s/.test(w) ? w : <span key={`${p}.${i}`} class="cmd-word">{w}</span>
          )
          : [part]
      )}
    </code>
  );
}

/** A long list cut to its first `cap` items unless `all` (ShowAll toggles it). */
export function capped<T>(items: T[], cap: number, all: boolean, toggle: () => void) {
  return {
    shown: all || items.length <= cap ? items : items.slice(0, cap),
    total: items.length,
    cap,
    all,
    toggle,
  };
}

/** `capped` with its own "show all" state. */
export function useCap<T>(items: T[], cap: number) {
  const [all, setAll] = useState(false);
  return capped(items, cap, all, () => setAll((a) => !a));
}

/** Under a list cut by useCap: how much of it shows, and a button for the rest (or the first few again). */
export function ShowAll(
  { cut, what }: { cut: { total: number; cap: number; all: boolean; toggle: () => void }; what: string },
) {
  if (cut.total <= cut.cap) return null;
  return (
    <div class="form-row show-all" data-testid="show-all">
      <span class="muted small">
        {cut.all ? `All ${cut.total} ${what}` : `${cut.cap} of ${cut.total} ${what}`}
      </span>
      <button type="button" class="secondary" onClick={cut.toggle}>
        {cut.all ? `Show the first ${cut.cap}` : `Show all ${cut.total} ${what}`}
      </button>
    </div>
  );
}

/** "Load more" under a paged list; nothing when every row is shown. */
export function LoadMore(
  { list, what }: { list: { hasMore: boolean; loading: boolean; loadMore: () => void }; what: string },
) {
  if (!list.hasMore) return null;
  return (
    <div class="form-row load-more">
      <button type="button" class="secondary" disabled={list.loading} onClick={list.loadMore}>
        {list.loading ? "Loading…" : `Load more ${what}`}
      </button>
    </div>
  );
}

/**
 * A destructive action in two steps, inline (no browser dialog, which would block automation): a button
 * asks first (AskButton); while it asks, the question says what is lost, with a "yes" and a "no" button
 * (AskQuestion), in its place or where the page puts it (a row under a table's row). Asking moves the focus
 * to "no" (the safe choice); "no", or Escape, puts the focus back on the first button. A refused action
 * says why beside that button.
 */
export function useAsking() {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string>();
  const opener = useRef<HTMLButtonElement>(null);
  const safe = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  useEffect(() => {
    if (open) safe.current?.focus();
    else if (refocus.current) opener.current?.focus();
    refocus.current = false;
  }, [open]);
  return {
    open,
    error,
    opener,
    safe,
    ask: () => (setError(undefined), setOpen(true)),
    /** Back to the button (with why the action was refused, if it was). */
    close: (refused?: string) => {
      refocus.current = true;
      setError(refused);
      setOpen(false);
    },
    /** Done: the page moves the focus (the button usually goes with what it removed). */
    finish: () => setOpen(false),
  };
}

export type Asking = ReturnType<typeof useAsking>;

/** The button that asks, hidden while it asks. */
export function AskButton({ asking, label, name }: { asking: Asking; label: string; name: string }) {
  if (asking.open) return null;
  return (
    <span class="actions">
      <button type="button" class="danger-outline" ref={asking.opener} aria-label={name} onClick={asking.ask}>
        {label}
      </button>
      {asking.error && <span class="field-error" role="alert">{asking.error}</span>}
    </span>
  );
}

/** While it asks: the question (`children`: what is lost), "yes" and "no". */
export function AskQuestion(
  { asking, name, yes, no = "Cancel", onConfirm, children }: {
    asking: Asking;
    /** What it does to what, for screen readers ("Delete task colours"). */
    name: string;
    yes: string;
    no?: string;
    onConfirm: () => Promise<unknown>;
    children?: ComponentChildren;
  },
) {
  const [busy, setBusy] = useState(false);
  const questionId = useId();
  if (!asking.open) return null;
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
      asking.finish();
    } catch (err) {
      asking.close(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div
      class="confirm"
      role="group"
      aria-label={children ? undefined : name}
      aria-labelledby={children ? questionId : undefined}
      data-testid="confirm"
      onKeyDown={(e) => e.key === "Escape" && asking.close()}
    >
      {children && <p id={questionId} class="confirm-question">{children}</p>}
      <span class="actions">
        <button type="button" class="danger" disabled={busy} onClick={confirm}>{yes}</button>
        <button type="button" class="secondary" ref={asking.safe} onClick={() => asking.close()}>{no}</button>
      </span>
    </div>
  );
}

/**
 * A recall (a share of the entities asked) in a table cell, with its 95 % Wilson interval under it: one
 * decimal beside an interval, none without (the World and Models pages).
 */
export function RecallCell(
  { recall, ci, n, testId, label }: {
    recall: number | null | undefined;
    ci: { lo: number; hi: number } | null | undefined;
    /** Entities asked, for the interval's title; unknown: "the entities asked". */
    n?: number | null;
    testId?: string;
    /** The column's name, shown beside the value where a stacked table (.stack) lays a row out as a card. */
    label?: string;
  },
) {
  const interval = percentInterval(ci);
  return (
    <td class="num" data-testid={testId} data-label={label}>
      {formatPercent(recall, interval ? 1 : 0)}
      {interval && (
        <>
          <br />
          <span
            class="muted small"
            title={`95 % interval, Wilson over ${n ? `${n} entities` : "the entities asked"}`}
          >
            {interval}
          </span>
        </>
      )}
    </td>
  );
}
