/** Field schemas shared by the contract's request bodies and the API's query strings. */
import { z } from "zod";
import { unstorableText } from "../tasks/storable.ts";

/** One of a fixed list of values, refused in the field's words: "method must be one of: naive, auxconf, …". */
export const oneOf = <const T extends readonly [string, ...string[]]>(label: string, values: T) =>
  z.enum(values, { error: `${label} must be one of: ${values.join(", ")}` });

/** The database's integer columns are 32-bit: a larger id or count is refused here, not by Postgres. */
export const INT32_MAX = 2 ** 31 - 1;

/** The most rows a list endpoint serves per request (its `limit`); a client pages past it with `offset`. */
export const PAGE_LIMIT_MAX = 1000;

/** A number field's messages in its own words ("limit must be ≥ 1"), never zod's generic ones. */
export const numberMessages = (label: string) => (issue: z.core.$ZodRawIssue): string => {
  switch (issue.code) {
    case "too_small":
      return `${label} must be ${issue.inclusive ? "≥" : ">"} ${issue.minimum}`;
    case "too_big":
      return `${label} must be ${issue.inclusive ? "≤" : "<"} ${issue.maximum}`;
    default:
      return typeof issue.input === "string"
        ? `${label} must be a number in plain decimal digits, got ${JSON.stringify(issue.input.slice(0, 40))}`
        : `${label} must be a number`;
  }
};

/**
 * An integer field from `min` to `max` (at most INT32_MAX). A value that misses gets one message, for the
 * first rule it breaks ("seed must be an integer", "seed must be ≥ 0", "limit must be ≤ 1000"). Left to
 * itself zod calls a whole number past 2^53 "not an integer" and adds every bound it breaks: a seed of
 * 1.2e29 got "must be an integer" first, then "must be ≤ 2147483647".
 */
export const int = (label: string, min: number, max = INT32_MAX) => {
  const top = Math.min(max, INT32_MAX);
  // zod's integer check refuses a whole number past 2^53 as too big or too small: name the bound instead.
  const integer = (issue: z.core.$ZodRawIssue) =>
    issue.code === "too_big"
      ? `${label} must be ≤ ${top}`
      : issue.code === "too_small"
      ? `${label} must be ≥ ${min}`
      : `${label} must be an integer`;
  return z.number({ error: numberMessages(label) }).int({ error: integer, abort: true })
    .min(min, { abort: true }).max(top, { abort: true });
};

const DECIMAL = /^-?\d+$/;

/**
 * A number schema for text input (a query string or a path segment): only an optional minus and decimal
 * digits become a number (" 7 ", "1e3" and "0x10" stay text and are refused by the number schema).
 */
export const fromText = <Schema extends z.ZodType>(schema: Schema) =>
  z.preprocess((value) => typeof value === "string" && DECIMAL.test(value) ? Number(value) : value, schema);

/** A string field that reaches the database: refuses what unstorableText refuses, naming the field. */
export const text = (label: string) =>
  z.string({ error: `${label} must be a string` }).superRefine((value, ctx) => {
    const problem = unstorableText(value);
    if (problem) ctx.addIssue({ code: "custom", message: `${label} ${problem}` });
  });

export const SIZE_NAME = text("size name").min(1, "size name must not be empty").max(64);
export const TASK_NAME = text("task name").regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
  "task name must be 1–64 letters, digits, '_', '-' or '.', starting with a letter or digit",
);
