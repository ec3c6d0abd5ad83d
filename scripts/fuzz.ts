/**
 * Hostile requests against the lab's API: `deno run -A scripts/fuzz.ts [--json]`. Starts its own server
 * (embedded PGlite in a temporary data dir, removed afterwards) and sends a battery built from
 * /api/openapi.json: every operation × each of its path params, query params and body fields × bad values
 * (ids 0, -1, 2^31, 2^53, "1e3", "0x10", " 7 "; strings with NUL, a lone surrogate, 10 MB; numbers as
 * strings, NaN, Infinity, arrays where scalars go), then missing and malformed bodies, wrong content types,
 * DELETE and OPTIONS without a body, no token and a wrong token, a foreign Host header, path traversal and
 * unknown routes. Jobs that a request happens to start are cancelled at once.
 *
 * Prints the tally by status code and by route and every 5xx with its request; exits 1 when any answer was
 * a 5xx or an /api error answer was not a JSON body.
 */
import { parseFlags, UsageError } from "../server/contract/command-flags.ts";
import { freePort, scriptHelp, spawnLabServer, waitForHealth } from "./load.ts";

/** Who a request claims to be: the server's token, none, or a wrong one. */
type Auth = "token" | "none" | "wrong";

/** One hostile request; `route` is the operation it aims at (`GET /api/jobs/{id}`), for the tally. */
export interface FuzzCase {
  route: string;
  method: string;
  /** Path and query, already encoded. */
  url: string;
  auth: Auth;
  headers: Record<string, string>;
  body?: string;
  /** What is wrong with it, in a few words. */
  what: string;
}

/** The slice of an OpenAPI 3 document the matrix reads. */
interface OpenApiDoc {
  servers?: { url: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}
interface OpenApiOperation {
  parameters?: { name: string; in: string; schema?: JsonSchema }[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
interface JsonSchema {
  $ref?: string;
  type?: string;
  enum?: unknown[];
  minimum?: number;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

const BIG = "x".repeat(10 * 1024 * 1024);
/** Long enough to hurt, short enough that the HTTP layer reads the URL at all. */
const LONG_URL_TEXT = "x".repeat(16 * 1024);

/** Bad values for a path or query slot, already percent-encoded (NUL, a lone surrogate as UTF-8, bad UTF-8). */
export const BAD_TEXT: readonly string[] = [
  "0",
  "-1",
  "2147483648",
  "9007199254740992",
  "1e3",
  "0x10",
  " 7 ",
  "%207%20",
  "+7",
  "NaN",
  "Infinity",
  "",
  "a%00b",
  "a%ED%A0%80b",
  "%FF",
  "..%2f..%2fetc%2fpasswd",
  "..",
  LONG_URL_TEXT,
];

/** Bad JSON values for a body field, as JSON text (NaN and Infinity are not JSON: the body is malformed). */
export const BAD_JSON: readonly string[] = [
  "0",
  "-1",
  "2147483648",
  "9007199254740992",
  '"1e3"',
  '"0x10"',
  '" 7 "',
  '"5"',
  "NaN",
  "Infinity",
  "1e999",
  "null",
  "[1]",
  '{"a":1}',
  "true",
  JSON.stringify("a\u0000b"),
  '"a\\ud800b"',
  JSON.stringify(BIG),
];

function resolve(doc: OpenApiDoc, schema: JsonSchema | undefined): JsonSchema {
  if (!schema) return {};
  if (schema.$ref) return resolve(doc, doc.components?.schemas?.[schema.$ref.split("/").at(-1)!]);
  if (schema.oneOf?.length) return resolve(doc, schema.oneOf[0]);
  if (schema.allOf?.length === 1) return { ...resolve(doc, schema.allOf[0]), default: schema.default };
  return schema;
}

/** A plausible value for a schema: what the rest of a body holds while one field is bad. */
function plausible(doc: OpenApiDoc, raw: JsonSchema): unknown {
  const schema = resolve(doc, raw);
  if (schema.default !== undefined) return schema.default;
  if (schema.enum?.length) return schema.enum[0];
  if (schema.type === "integer" || schema.type === "number") return Math.max(schema.minimum ?? 1, 1);
  if (schema.type === "boolean") return false;
  if (schema.type === "array") return [];
  if (schema.type === "object") return plausibleObject(doc, schema);
  return "fuzz";
}

function plausibleObject(doc: OpenApiDoc, schema: JsonSchema): Record<string, unknown> {
  const fields = Object.entries(schema.properties ?? {}).filter(([k]) => schema.required?.includes(k));
  return Object.fromEntries(fields.map(([k, s]) => [k, plausible(doc, s)]));
}

/** `{"a":1,"b":<raw>}`: a plausible body with `raw` (JSON text, maybe not valid JSON) in `field`. */
function bodyWith(base: Record<string, unknown>, field: string, raw: string): string {
  const marker = `"__fuzz_${field}__"`;
  return JSON.stringify({ ...base, [field]: `__fuzz_${field}__` }).replace(marker, () => raw);
}

function fillPath(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name) => values[name]);
}

/** Every operation of `doc` × each of its slots × every bad value, plus the cases every API should refuse. */
export function buildFuzzMatrix(doc: OpenApiDoc): FuzzCase[] {
  const prefix = doc.servers?.[0]?.url ?? "";
  const cases: FuzzCase[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const [lower, op] of Object.entries(item)) {
      cases.push(...operationCases(doc, prefix, template, lower.toUpperCase(), op));
    }
    const url = prefix + fillPath(template, { id: "1", name: "fuzz" });
    for (const method of ["DELETE", "OPTIONS"]) {
      cases.push({
        route: `${method} ${prefix}${template}`,
        method,
        url,
        auth: "token",
        headers: {},
        what: "no body",
      });
    }
  }
  const stray = [
    "/api/nope",
    "/api/jobs/1/nope",
    "/api/..%2f..%2fetc%2fpasswd",
    "/api/tasks/..%2f..%2fdb-owner.json",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/api/%00",
    "/api/jobs/%ff",
  ];
  for (const url of stray) {
    cases.push({
      route: "unknown route",
      method: "GET",
      url,
      auth: "none",
      headers: {},
      what: "unknown route",
    });
  }
  cases.push({
    route: "GET /api/health",
    method: "GET",
    url: "/api/health",
    auth: "none",
    headers: { host: "evil.example" },
    what: "foreign Host header",
  });
  return cases;
}

function operationCases(
  doc: OpenApiDoc,
  prefix: string,
  template: string,
  method: string,
  op: OpenApiOperation,
): FuzzCase[] {
  const route = `${method} ${prefix}${template}`;
  const pathDefaults = { id: "1", name: "fuzz" };
  const url = prefix + fillPath(template, pathDefaults);
  const mutation = method !== "GET";
  const json = { "content-type": "application/json" };
  const schema = resolve(doc, op.requestBody?.content?.["application/json"]?.schema);
  const base = plausibleObject(doc, schema);
  const baseBody = op.requestBody ? JSON.stringify(base) : undefined;
  const one = (c: Partial<FuzzCase> & { what: string }): FuzzCase => ({
    route,
    method,
    url,
    auth: "token",
    headers: baseBody ? json : {},
    body: baseBody,
    ...c,
  });
  const cases: FuzzCase[] = [];
  for (const p of op.parameters ?? []) {
    for (const bad of BAD_TEXT) {
      const what = `${p.in} ${p.name}=${bad.slice(0, 24)}`;
      if (p.in === "path") {
        cases.push(one({ url: prefix + fillPath(template, { ...pathDefaults, [p.name]: bad }), what }));
      }
      if (p.in === "query") cases.push(one({ url: `${url}?${p.name}=${bad}`, what }));
    }
    if (p.in === "query") {
      cases.push(one({ url: `${url}?${p.name}=1&${p.name}=2`, what: `query ${p.name} twice` }));
    }
  }
  for (const field of Object.keys(schema.properties ?? {})) {
    for (const raw of BAD_JSON) {
      cases.push(one({ body: bodyWith(base, field, raw), what: `body ${field}=${raw.slice(0, 24)}` }));
    }
  }
  if (op.requestBody) {
    cases.push(one({ body: undefined, what: "missing body" }));
    cases.push(one({ headers: { "content-type": "text/plain" }, what: "wrong content type" }));
    cases.push(one({ headers: {}, what: "no content type" }));
    for (const bad of ["{", "null", "[]", '"x"', "\u0000"]) {
      cases.push(one({ body: bad, what: `body ${bad}` }));
    }
  }
  if (mutation) {
    cases.push(one({ auth: "none", what: "no token" }), one({ auth: "wrong", what: "wrong token" }));
  } else {
    cases.push(one({ url: `${url}?unknown=a%00b&limit=[1]`, what: "unknown query params" }));
  }
  return cases;
}

export interface FuzzAnswer {
  case: FuzzCase;
  /** 0 when no HTTP answer came (the connection was refused or reset). */
  status: number;
  /** Why an /api error answer is unacceptable (not JSON), if it is. */
  badBody?: string;
}

/** HTTP/1.1 by hand, for what fetch will not send (a Host header of our choosing); resolves the status. */
async function sendRaw(base: string, c: FuzzCase): Promise<number> {
  const { hostname, port } = new URL(base);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const head = Object.entries(c.headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(
    new TextEncoder().encode(`${c.method} ${c.url} HTTP/1.1\r\n${head}connection: close\r\n\r\n`),
  );
  const reply = await new Response(conn.readable).text();
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
}

async function send(base: string, token: string, c: FuzzCase): Promise<FuzzAnswer & { created?: number }> {
  if (c.headers.host) return { case: c, status: await sendRaw(base, c).catch(() => 0) };
  const headers = new Headers(c.headers);
  if (c.auth !== "none") headers.set("authorization", `Bearer ${c.auth === "token" ? token : "wrong-token"}`);
  try {
    const res = await fetch(base + c.url, { method: c.method, headers, body: c.body });
    // The event stream never ends: its status is the answer.
    const streaming = res.headers.get("content-type")?.startsWith("text/event-stream");
    const text = streaming ? await res.body?.cancel().then(() => "") ?? "" : await res.text();
    let answer: Record<string, unknown> | undefined;
    let badBody: string | undefined;
    try {
      answer = text ? JSON.parse(text) : undefined;
    } catch {
      if (res.status >= 400 && c.url.startsWith("/api")) badBody = `not JSON: ${text.slice(0, 80)}`;
    }
    if (c.route === "unknown route" && /root:.*:0:0:/.test(text)) badBody = "path traversal read /etc/passwd";
    const job = (answer?.job ?? answer) as { id?: unknown; status?: unknown } | undefined;
    const created = res.status === 201 && typeof job?.id === "number" && job.status ? job.id : undefined;
    return { case: c, status: res.status, badBody, created };
  } catch {
    return { case: c, status: 0 };
  }
}

/** Status code → count, and route → (status code → count). */
export function tally(answers: FuzzAnswer[]) {
  const byStatus: Record<string, number> = {};
  const byRoute: Record<string, Record<string, number>> = {};
  for (const a of answers) {
    const code = a.status === 0 ? "no answer" : String(a.status);
    byStatus[code] = (byStatus[code] ?? 0) + 1;
    const route = byRoute[a.case.route] ??= {};
    route[code] = (route[code] ?? 0) + 1;
  }
  return { byStatus, byRoute };
}

async function main() {
  const { values } = parseFlags(Deno.args, {
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return console.log(await scriptHelp(import.meta.url));
  const dataDir = await Deno.makeTempDir({ prefix: "lab-fuzz-" });
  const port = freePort();
  const token = crypto.randomUUID();
  const server = spawnLabServer(dataDir, port, token);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHealth(base, 60_000);
    const doc = await (await fetch(`${base}/api/openapi.json`)).json();
    const answers: FuzzAnswer[] = [];
    for (const c of buildFuzzMatrix(doc)) {
      const answer = await send(base, token, c);
      if (answer.created !== undefined) {
        const cancel = `${base}/api/jobs/${answer.created}/cancel`;
        await fetch(cancel, { method: "POST", headers: { authorization: `Bearer ${token}` } })
          .then((r) => r.body?.cancel()).catch(() => {});
      }
      answers.push({ case: answer.case, status: answer.status, badBody: answer.badBody });
    }
    const { byStatus, byRoute } = tally(answers);
    const failures = answers.filter((a) => a.status >= 500 || a.badBody);
    console.log(`${answers.length} requests; by status: ${JSON.stringify(byStatus)}`);
    for (const [route, codes] of Object.entries(byRoute)) {
      console.log(`  ${route.padEnd(44)} ${JSON.stringify(codes)}`);
    }
    for (const f of failures) {
      console.log(
        `FAIL ${f.status} ${f.case.method} ${f.case.url.slice(0, 120)} (${f.case.what})${
          f.badBody ? `: ${f.badBody}` : ""
        }`,
      );
    }
    if (values.json) {
      console.log(JSON.stringify({ requests: answers.length, byStatus, byRoute, failures: failures.length }));
    }
    return failures.length > 0 ? 1 : 0;
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* already gone */ }
    await server.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const code = await main().catch((err) => {
    if (!(err instanceof UsageError)) throw err;
    console.error(`fuzz: ${err.message}`);
    return 2;
  });
  Deno.exit(code ?? 0);
}
