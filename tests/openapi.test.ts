/**
 * The generated OpenAPI document: Redocly-style hygiene (open reads say `security: []`, no one-branch
 * unions, a license, unique operationIds, a schema for every success body), and the response checker
 * tests/api.test.ts runs every response through refuses an undocumented field and a missing one.
 */
import assert from "node:assert/strict";
import { buildOpenApiDocument, OPERATIONS } from "../server/api/openapi.ts";
import { responseProblem } from "./helpers/openapi-check.ts";

type Json = Record<string, unknown>;
const doc = buildOpenApiDocument() as {
  info: { license?: { name?: string } };
  paths: Record<string, Record<string, Json & { responses: Record<string, Json> }>>;
  components: { schemas: Record<string, Json> };
};

/** Every oneOf/anyOf in a JSON tree, with where it sits. */
function unions(node: unknown, at: string, found: { at: string; branches: unknown[] }[] = []) {
  if (Array.isArray(node)) node.forEach((n, i) => unions(n, `${at}[${i}]`, found));
  else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if ((key === "oneOf" || key === "anyOf") && Array.isArray(value)) found.push({ at, branches: value });
      unions(value, `${at}.${key}`, found);
    }
  }
  return found;
}

Deno.test("the document: open reads say security [], no one-branch union, a license, operationIds", () => {
  assert.ok(doc.info.license?.name, "info.license.name");
  const ids = new Set<string>();
  let openReads = 0;
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const where = `${method} ${path}`;
      const id = op.operationId as string;
      assert.match(id ?? "", /^[a-z][A-Za-z]+$/, `${where} operationId`);
      assert.ok(!ids.has(id), `${where}: operationId ${id} repeats`);
      ids.add(id);
      const secured = (op.security as unknown[]).length > 0;
      if (method === "get" && path !== "/auth") {
        assert.deepEqual(op.security, [], `${where} is open: security []`);
        openReads++;
      } else assert.ok(secured, `${where} needs the token`);
      const success = op.responses["201"] ?? op.responses["200"];
      const content = Object.values(success.content as Record<string, { schema: Json }>);
      assert.equal(content.length, 1, where);
      assert.notDeepEqual(content[0].schema, {}, `${where}: its success body has a schema`);
    }
  }
  assert.equal(ids.size, OPERATIONS.length);
  assert.ok(openReads >= 20, `${openReads} open reads`);
  const oneBranch = unions(doc, "doc").filter((u) => u.branches.length < 2).map((u) => u.at);
  assert.deepEqual(oneBranch, []);
  // JobCreate is a discriminated union of one job type: the document shows that type's object itself.
  assert.equal(doc.components.schemas.JobCreate.type, "object");
  // OpenAPI 3.0 reads `nullable` only beside a `type` (Redocly's nullable-type-sibling).
  const untyped: string[] = [];
  const walk = (node: unknown, at: string) => {
    if (node === null || typeof node !== "object") return;
    const o = node as Record<string, unknown>;
    if (o.nullable === true && !("type" in o)) untyped.push(at);
    for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
  };
  walk(doc, "#");
  assert.deepEqual(untyped, []);
  const pgr =
    (doc.components.schemas.ResultRecord as { properties: { pgr: { anyOf: Json[] } } }).properties.pgr;
  assert.deepEqual(pgr.anyOf.map((b) => b.nullable), [true, true, true], "nullable inside each typed branch");
});

/** A job as GET /api/jobs/{id} answers it, written out by hand. */
const JOB = {
  id: 1,
  type: "toy-train",
  params: {},
  status: "done",
  progress: null,
  leaseOwner: null,
  leaseExpiresAt: null,
  attempts: 1,
  maxAttempts: 3,
  ranOn: null,
  waitsFor: [],
  runAfter: null,
  parentId: null,
  state: null,
  result: { loss: 0.5 },
  error: null,
  createdAt: "2026-01-01T00:00:00.000Z",
  startedAt: null,
  finishedAt: null,
  updatedAt: "2026-01-01T00:00:00.000Z",
};
const answer = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

Deno.test("the response check refuses an undocumented field, a missing one, a wrong type or status", async () => {
  assert.equal(await responseProblem("GET", "/api/jobs/1", answer(JOB)), undefined);
  assert.equal(
    await responseProblem("GET", "/api/jobs/1", answer({ ...JOB, secret: 1 })),
    "body.secret: not in the documented schema",
  );
  const { attempts: _, ...missing } = JOB;
  assert.match((await responseProblem("GET", "/api/jobs/1", answer(missing)))!, /^body\.attempts: /);
  assert.match(
    (await responseProblem("GET", "/api/jobs", answer([{ ...JOB, status: "sleeping" }])))!,
    /^body\.0\.status: /,
  );
  assert.match(
    (await responseProblem("GET", "/api/jobs/1", answer(JOB, 201)))!,
    /status 201 is not documented/,
  );
  assert.equal(
    await responseProblem("GET", "/api/jobs/1", answer({ error: { code: "not_found", message: "m" } }, 404)),
    undefined,
  );
  assert.equal(
    await responseProblem(
      "GET",
      "/api/jobs/1",
      answer({ error: { code: "x", message: "m" }, extra: 1 }, 404),
    ),
    "body.extra: not in the documented schema",
  );
});
