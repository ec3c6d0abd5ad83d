/**
 * Form helpers: turn the API's zod schemas (the same ones the server validates with) and the server's own
 * error answers into messages beside the fields.
 */
import { ApiRequestError, describeError } from "./api.ts";

export type FieldErrors = Record<string, string>;

/**
 * A message beside its field, in the form's words: an API key in camelCase that opens it is dropped
 * ("promptingShots must be ≥ 1" → "must be ≥ 1" under "Prompting baselines, k"); a plain word stays.
 */
export function besideField(key: string, message: string): string {
  return /[A-Z]/.test(key) && message.startsWith(`${key} `) ? message.slice(key.length + 1) : message;
}

/** First message per top-level field; `rename` maps schema keys to form fields (e.g. seed → seeds). */
export function issuesToFieldErrors(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>,
  rename: Record<string, string> = {},
): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of issues) {
    const key = String(issue.path[0] ?? "form");
    const field = rename[key] ?? key;
    errors[field] ??= besideField(key, issue.message);
  }
  return errors;
}

/** The server's answer to a rejected submission, as field errors where it names a field. */
export function serverErrorToFieldErrors(err: unknown, rename: Record<string, string> = {}): FieldErrors {
  if (!(err instanceof ApiRequestError)) return { form: describeError(err) };
  if (err.issues.length > 0) return issuesToFieldErrors(err.issues, rename);
  const details = (err.details ?? {}) as { field?: string };
  const byCode: Record<string, string | undefined> = {
    unknown_task: "task",
    unknown_size: details.field,
    weak_not_smaller: "strong",
    duplicate_sizes: "sizes",
  };
  const field = byCode[err.code];
  if (field) return { [rename[field] ?? field]: err.message };
  return { form: describeError(err) };
}

/** Parses "0, 1 2" into numbers; text that is not a number becomes NaN so that zod names it. */
export function parseNumberList(text: string): number[] {
  return text.split(/[\s,]+/).filter((s) => s !== "").map((
    s,
  ) => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : NaN));
}

/** Parses an optional number field: "" → undefined, junk → NaN (zod then says "must be a number"). */
export function parseOptionalNumber(text: string): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  return /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(t) ? Number(t) : NaN;
}
