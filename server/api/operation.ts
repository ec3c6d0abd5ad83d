/**
 * One object per API operation drives both its route and its OpenAPI entry: `serve` registers the handler
 * at the operation's path with validators for its param, query and body schemas, and openapi.ts builds the
 * document from the same objects, so the two cannot drift apart.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { z } from "zod";
import { validate } from "./errors.ts";

export interface Operation {
  method: "get" | "post" | "delete";
  /** OpenAPI path below /api, with {param} placeholders. */
  path: string;
  tag: string;
  summary: string;
  param?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The handler reads the body itself (raw JSONL, a world file checked field by field): documented only. */
  handlerReadsBody?: boolean;
  /** Also accepts raw JSONL (text/plain, application/x-ndjson). */
  rawJsonl?: boolean;
  /** The success body: JSON unless `produces` names another type. */
  response: z.ZodType;
  /** 201 for creations. */
  created?: boolean;
  /** text/event-stream, text/csv or text/html instead of JSON. */
  produces?: string;
  /** A read that still needs the bearer token. */
  auth?: boolean;
  /** Errors this operation answers besides those every operation of its kind may (openapi.ts). */
  errors?: Record<number, string>;
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What the validators let through, typed by the operation's schemas. */
export interface Input<O extends Operation> {
  param: Parsed<O["param"]>;
  query: Parsed<O["query"]>;
  body: O["handlerReadsBody"] extends true ? undefined : Parsed<O["body"]>;
}

/** Keeps the operation's literal schema types, so `serve` can type the handler's input. */
export function defineOperation<const O extends Operation>(op: O): O {
  return op;
}

export type Handler<O extends Operation> = (c: Context, input: Input<O>) => Response | Promise<Response>;

/**
 * A query schema refuses keys it does not name, listing those it does: a misspelt filter (`?tsk=`) would
 * otherwise be ignored and answer every row, and a median over every task reads like one task's.
 */
const strictQuery = (schema: z.ZodType) => schema instanceof z.ZodObject ? schema.strict() : schema;

/** Registers `handler` for `op` on a router mounted at `base` (a prefix of op.path). */
export function serve<O extends Operation>(router: Hono, base: string, op: O, handler: Handler<O>): void {
  if (!op.path.startsWith(base)) throw new Error(`operation ${op.path} is not below its router's ${base}`);
  const path = op.path.slice(base.length).replace(/\{(\w+)\}/g, ":$1") || "/";
  const validators: MiddlewareHandler[] = [];
  if (op.param) validators.push(validate("param", op.param));
  if (op.query) validators.push(validate("query", strictQuery(op.query)));
  if (op.body && !op.handlerReadsBody) validators.push(validate("json", op.body));
  const run: MiddlewareHandler = async (c) => {
    // deno-lint-ignore no-explicit-any -- the validators above checked each target against op's schemas
    const valid = (target: string) => (c.req.valid as (t: string) => any)(target);
    return await handler(c, {
      param: op.param ? valid("param") : undefined,
      query: op.query ? valid("query") : undefined,
      body: op.body && !op.handlerReadsBody ? valid("json") : undefined,
    } as Input<O>);
  };
  // Hono's overloads type each middleware in a fixed-length chain; a list of them is typed loosely.
  const on = router as unknown as {
    on(method: string, path: string, ...handlers: MiddlewareHandler[]): void;
  };
  on.on(op.method.toUpperCase(), path, ...validators, run);
}
