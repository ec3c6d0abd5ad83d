/**
 * `/api/docs`: Swagger UI (npm swagger-ui-dist, pinned in deno.json) served from the lab itself, no CDN. The
 * page loads its script and stylesheet from /api/docs/assets/, reads /api/openapi.json, and takes the bearer
 * token from the dashboard's sign-in (localStorage) or from its Authorize button for Try it out.
 */
import swaggerUiDir from "swagger-ui-dist/absolute-path.js";

/** Where the page's files are served; the query string is each file's content hash, so caches never go stale. */
export const DOCS_ASSETS_PATH = "/api/docs/assets";

/** The dashboard's localStorage key for the token (web/lib/api.ts): a signed-in reader is authorized at once. */
const DASHBOARD_TOKEN_KEY = "lab.token";

// Swagger UI's config: validatorUrl null keeps it from sending the document to validator.swagger.io.
const INIT_JS = `const root = document.getElementById("swagger-ui");
const ui = SwaggerUIBundle({
  url: root.dataset.openapi,
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: true,
  onComplete() {
    const token = localStorage.getItem(${JSON.stringify(DASHBOARD_TOKEN_KEY)});
    if (token) ui.preauthorizeApiKey("bearer", token);
  },
});
`;

export interface DocsAsset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  /** Short content hash, the asset URL's cache key. */
  version: string;
}

/** The files the page loads, by the name it loads them under. */
export type DocsAssets = ReadonlyMap<string, DocsAsset>;

async function asset(body: Uint8Array<ArrayBuffer>, contentType: string): Promise<DocsAsset> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const version = [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { body, contentType, version };
}

async function packageFile(name: string): Promise<Uint8Array<ArrayBuffer>> {
  const dir = swaggerUiDir();
  try {
    return await Deno.readFile(`${dir}/${name}`);
  } catch (err) {
    throw new Error(
      `the API docs page needs swagger-ui-dist's ${name}, not readable in ${dir} (${err}); ` +
        `run \`deno install\` to restore node_modules`,
    );
  }
}

/** Reads Swagger UI's bundle and stylesheet from the npm package. */
async function loadDocsAssets(): Promise<DocsAssets> {
  return new Map([
    ["swagger-ui-bundle.js", await asset(await packageFile("swagger-ui-bundle.js"), "text/javascript")],
    ["swagger-ui.css", await asset(await packageFile("swagger-ui.css"), "text/css")],
    ["init.js", await asset(new TextEncoder().encode(INIT_JS), "text/javascript")],
  ]);
}

/** Read once, when the server starts. */
export const DOCS_ASSETS: DocsAssets = await loadDocsAssets();

/** The page: only same-origin files, so it works under a script-src 'self' policy too. */
function docsHtml(assets: DocsAssets): string {
  const url = (name: string) => `${DOCS_ASSETS_PATH}/${name}?v=${assets.get(name)!.version}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lab API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${url("swagger-ui.css")}">
</head><body>
<div id="swagger-ui" data-openapi="/api/openapi.json"></div>
<script src="${url("swagger-ui-bundle.js")}"></script>
<script src="${url("init.js")}"></script>
</body></html>
`;
}

export const DOCS_HTML = docsHtml(DOCS_ASSETS);
