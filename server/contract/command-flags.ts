/**
 * The flags of a command line (`deno task start`, `lab <command>`, bench, load), parsed strictly: an unknown
 * flag, a flag without its value, a flag given twice or a stray argument is a UsageError that names it and
 * lists the command's flags, printed as one line (exit status 2) instead of being ignored or crashing later.
 * A negative number after a flag is its value (`--seed -1`, as `--seed=-1`), so the command's own range
 * check answers it.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A command line the command does not take; `flags` are the ones it does. */
export class UsageError extends Error {
  constructor(readonly problem: string, readonly flags: string[] = []) {
    super(flags.length > 0 ? `${problem}; its flags: ${flags.join(" ")}` : problem);
  }
}

/** `a, b,,c` → ["a", "b", "c"]: a flag's comma-separated list, blanks dropped (undefined gives []). */
export function commaList(value: string | undefined): string[] {
  return (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/**
 * A contract rule broken by a flag, in the flag's words: the field's message "seed must be ≤ 2147483647"
 * becomes "--seeds must be ≤ 2147483647, got 1.2e+29", so the CLI refuses what the API refuses, saying why.
 */
export function flagRuleError(flag: string, field: string, message: string, got: string): UsageError {
  const rule = message.startsWith(`${field} `) ? message.slice(field.length) : `: ${message}`;
  return new UsageError(`--${flag}${rule}, got ${got}`);
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

/** `--name -1` → `--name=-1` where --name takes a value: parseArgs would call -1 an ambiguous flag. */
function joinNegativeValues(args: string[], options: ParseArgsOptionsConfig): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = /^--([^=]+)$/.exec(args[i])?.[1];
    if (name && options[name]?.type === "string" && /^-(\d|\.\d)/.test(args[i + 1] ?? "")) {
      joined.push(`${args[i]}=${args[++i]}`);
    } else joined.push(args[i]);
  }
  return joined;
}

/** The first flag given twice that takes one value: the last one would silently win. */
function repeatedFlag(tokens: { kind: string; name?: string }[], options: ParseArgsOptionsConfig) {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option" || !token.name || options[token.name]?.multiple) continue;
    if (seen.has(token.name)) return token.name;
    seen.add(token.name);
  }
  return undefined;
}

export function parseFlags<O extends ParseArgsOptionsConfig, P extends boolean = false>(
  args: string[],
  options: O,
  allowPositionals?: P,
) {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args, options),
      options,
      strict: true,
      allowPositionals: allowPositionals ?? false as P,
      tokens: true,
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (!code?.startsWith("ERR_PARSE_ARGS")) throw err;
    throw new UsageError(problemOf(err as Error), flagList(options));
  }
  const repeated = repeatedFlag(parsed.tokens, options);
  if (repeated) throw new UsageError(`--${repeated} is given twice: give it once`, flagList(options));
  return parsed;
}

/**
 * Refuses a command line without its required flags, naming each one missing (`what` shows its value);
 * returns the values with those flags present.
 */
export function requireFlags<V extends Record<string, unknown>, K extends keyof V & string>(
  values: V,
  required: Partial<Record<K, string>>,
  usage: string,
): V & { [k in K]-?: NonNullable<V[k]> } {
  const missing = Object.entries(required).filter(([flag]) => !values[flag]).map(([flag, what]) =>
    `--${flag} ${what}`
  );
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(", ")}: ${usage}`);
  return values as V & { [k in K]-?: NonNullable<V[k]> };
}
