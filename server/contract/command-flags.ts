/**
 * The flags of a command line (`deno task start`, `lab <command>`, bench, load), parsed strictly: an unknown
 * flag, a flag without its value or a stray argument is a UsageError that names it and lists the command's
 * flags, printed as one line (exit status 2) instead of being ignored or crashing later.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A command line the command does not take; `flags` are the ones it does. */
export class UsageError extends Error {
  constructor(readonly problem: string, readonly flags: string[] = []) {
    super(flags.length > 0 ? `${problem}; its flags: ${flags.join(" ")}` : problem);
  }
}

/** `--json --port …`: the flags of an options table, `…` where a value follows. */
export function flagList(options: ParseArgsOptionsConfig): string[] {
  return Object.entries(options).map(([name, o]) => `--${name}${o.type === "string" ? " …" : ""}`);
}

/** What went wrong, in the command's words, from a node:util parseArgs error. */
function problemOf(err: { code?: string; message: string }): string {
  const unknown = /Unknown option '([^']+)'/.exec(err.message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = /Option '(-[^ ']+)[^']*' argument missing/.exec(err.message);
  if (missing) return `${missing[1]} needs a value`;
  const stray = /Unexpected argument '([^']+)'/.exec(err.message);
  if (stray) return `unexpected argument "${stray[1]}"`;
  return err.message;
}

export function parseFlags<O extends ParseArgsOptionsConfig, P extends boolean = false>(
  args: string[],
  options: O,
  allowPositionals?: P,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: allowPositionals ?? false as P });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (!code?.startsWith("ERR_PARSE_ARGS")) throw err;
    throw new UsageError(problemOf(err as Error), flagList(options));
  }
}
