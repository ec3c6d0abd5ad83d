/**
 * A terminal progress bar with rate and ETA for long CLI work (pretraining, experiments, sweeps).
 * On a TTY it redraws one line on stderr; elsewhere it prints a line at most every `logEverySeconds`,
 * so logs stay readable and `--json` output on stdout stays clean.
 */

import { progressCount } from "../server/contract/jobs.ts";

export interface ProgressOptions {
  label: string;
  total: number;
  unit?: string;
  logEverySeconds?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** `text` cut to `columns` characters, its last one "…" where it was cut. */
export function clip(text: string, columns: number): string {
  const chars = [...text];
  return chars.length <= columns ? text : chars.slice(0, Math.max(0, columns - 1)).join("") + "…";
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 120;
  }
}

export class ProgressBar {
  private start = performance.now();
  private lastDraw = -Infinity;
  private drewEnd = false;
  /** Units done so far (the last update). */
  done = 0;
  private readonly tty = Deno.stderr.isTerminal();
  private readonly encoder = new TextEncoder();

  constructor(readonly opts: ProgressOptions) {}

  /** Rate in units per second since the start. */
  get rate(): number {
    return this.done / Math.max(1e-9, (performance.now() - this.start) / 1000);
  }

  /** NaN (printed "--:--") until something is done: a rate of 0 has no ETA. */
  get etaSeconds(): number {
    return this.done > 0 ? (this.opts.total - this.done) / this.rate : NaN;
  }

  /** A new total, for work whose size becomes known as it goes (sizes that resume part way). */
  setTotal(total: number): void {
    this.opts.total = total;
  }

  update(done: number, note = ""): void {
    this.done = done;
    const now = performance.now();
    const every = this.tty ? 100 : 1000 * (this.opts.logEverySeconds ?? 10);
    // The end is drawn at once, but once: work that reports on at 100 % (a lane's last stages) adds no line.
    if (done < this.opts.total) this.drewEnd = false;
    const ending = done >= this.opts.total && !this.drewEnd;
    if (now - this.lastDraw < every && !ending) return;
    if (ending) this.drewEnd = true;
    this.lastDraw = now;
    const fraction = Math.min(1, done / Math.max(1, this.opts.total));
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const unit = this.opts.unit ?? "it";
    const rate = this.rate >= 100 ? this.rate.toFixed(0) : this.rate.toFixed(2);
    const line = `${this.opts.label} ${bar} ${(100 * fraction).toFixed(1).padStart(5)}% ` +
      `${progressCount(done, this.opts.total, unit)} ${rate} ${unit}/s ETA ${
        formatDuration(this.etaSeconds)
      }` +
      `${note ? " " + note : ""}`;
    // A redrawn line must fit the terminal: one that wraps leaves a copy behind at every redraw.
    const shown = this.tty ? clip(line, terminalColumns() - 1) : line;
    Deno.stderr.writeSync(this.encoder.encode(this.tty ? `\r\x1b[2K${shown}` : `${line}\n`));
  }

  /** Ends the bar where it stands (interrupted work): the count so far and the note, drawn at once. */
  stop(note = ""): void {
    this.lastDraw = -Infinity;
    this.update(this.done, note);
    if (this.tty) Deno.stderr.writeSync(this.encoder.encode("\n"));
  }

  finish(note = ""): void {
    // A log that already holds the end gets no copy of it; a terminal's line is redrawn without the stage.
    if (this.tty || note || !this.drewEnd) {
      this.lastDraw = -Infinity;
      this.drewEnd = false;
      this.update(this.opts.total, note);
    }
    if (this.tty) Deno.stderr.writeSync(this.encoder.encode("\n"));
  }
}
