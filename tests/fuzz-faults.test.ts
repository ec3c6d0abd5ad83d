/**
 * The pure parts of scripts/fuzz.ts and scripts/faults.ts on hand-written inputs: the hostile-request
 * matrix built from an OpenAPI document, the tally, and the metric-series gap check.
 */
import assert from "node:assert/strict";
import { BAD_JSON, BAD_TEXT, buildFuzzMatrix, type FuzzCase, tally } from "../scripts/fuzz.ts";
import { seriesGaps } from "../scripts/faults.ts";

/** Two operations: a read with a path id and a query limit, a write with a body of two fields. */
const DOC = {
  servers: [{ url: "/api" }],
  paths: {
    "/things/{id}": {
      get: {
        parameters: [
          { name: "id", in: "path", schema: { type: "integer" } },
          { name: "limit", in: "query", schema: { type: "integer" } },
        ],
      },
    },
    "/things": {
      post: {
        requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } } },
      },
    },
  },
  components: {
    schemas: {
      Thing: {
        type: "object",
        properties: { name: { type: "string" }, size: { type: "integer", minimum: 4 } },
        required: ["name", "size"],
      },
    },
  },
};

Deno.test("fuzz matrix: every slot of every operation gets every bad value", () => {
  const cases = buildFuzzMatrix(DOC);
  const of = (route: string, what: string) =>
    cases.filter((c) => c.route === route && c.what.startsWith(what));
  // Path id and query limit: one case per bad text each, plus the repeated query param.
  assert.equal(of("GET /api/things/{id}", "path id=").length, BAD_TEXT.length);
  assert.equal(of("GET /api/things/{id}", "query limit=").length, BAD_TEXT.length);
  assert.equal(of("GET /api/things/{id}", "query limit twice").length, 1);
  assert.ok(cases.some((c) => c.url === "/api/things/2147483648"));
  assert.ok(cases.some((c) => c.url === "/api/things/1?limit=%207%20"));
  // Body fields: one case per bad JSON value each; the other field keeps a plausible value.
  assert.equal(of("POST /api/things", "body name=").length, BAD_JSON.length);
  assert.equal(of("POST /api/things", "body size=").length, BAD_JSON.length);
  const sizeAsString = cases.find((c) => c.what === 'body size="5"')!;
  assert.equal(sizeAsString.body, '{"name":"fuzz","size":"5"}');
  const nanSize = cases.find((c) => c.what === "body size=NaN")!;
  assert.equal(nanSize.body, '{"name":"fuzz","size":NaN}'); // not JSON at all, on purpose
  const nameWithNul = cases.find((c) => c.what.startsWith("body name=") && c.body?.includes("\\u0000"));
  assert.deepEqual(JSON.parse(nameWithNul!.body!), { name: "a\u0000b", size: 4 });
  // The write: missing body, wrong content type, no token, wrong token; no GET gets a token test.
  for (const what of ["missing body", "wrong content type", "no token", "wrong token"]) {
    assert.equal(of("POST /api/things", what).length, 1, what);
  }
  assert.equal(of("POST /api/things", "missing body")[0].body, undefined);
  assert.equal(of("POST /api/things", "no token")[0].auth, "none");
  const routed = cases.filter((c) => c.route !== "unknown route" && !c.headers.host);
  assert.equal(routed.filter((c) => c.method === "GET" && c.auth !== "token").length, 0);
  // DELETE and OPTIONS without a body on every path; a foreign Host; unknown routes.
  for (const method of ["DELETE", "OPTIONS"]) {
    assert.deepEqual(
      cases.filter((c) => c.method === method).map((c) => [c.url, c.body]),
      [["/api/things/1", undefined], ["/api/things", undefined]],
    );
  }
  assert.equal(cases.filter((c) => c.headers.host === "evil.example").length, 1);
  assert.ok(cases.some((c) => c.route === "unknown route" && c.url.includes("..%2f")));
});

Deno.test("fuzz tally: counts by status and by route; no answer is its own row", () => {
  const at = (route: string): FuzzCase => ({
    route,
    method: "GET",
    url: "/",
    auth: "none",
    headers: {},
    what: "",
  });
  const { byStatus, byRoute } = tally([
    { case: at("a"), status: 400 },
    { case: at("a"), status: 400 },
    { case: at("a"), status: 500 },
    { case: at("b"), status: 0 },
  ]);
  assert.deepEqual(byStatus, { "400": 2, "500": 1, "no answer": 1 });
  assert.deepEqual(byRoute, { a: { "400": 2, "500": 1 }, b: { "no answer": 1 } });
});

Deno.test("series gaps: missing steps, duplicate rows and steps out of range", () => {
  assert.deepEqual(seriesGaps([0, 1, 2, 3], 4, 4), { missing: [], stray: [], duplicated: 0 });
  // Steps 2 and 5 never written; step 3 written twice (5 rows for 4 distinct steps); 6 beyond the end.
  assert.deepEqual(seriesGaps([0, 1, 3, 4, 6], 6, 6), { missing: [2, 5], stray: [6], duplicated: 1 });
  assert.deepEqual(seriesGaps([], 0, 3), { missing: [0, 1, 2], stray: [], duplicated: 0 });
});
