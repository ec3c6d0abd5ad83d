/**
 * `/api/docs`: a self-contained interactive reference (no CDN). It reads /api/openapi.json, lists the
 * operations by tag, and lets the reader fill path/query parameters, a JSON body and the token, send the
 * request and see the response.
 */

export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lab API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1c1c1c;background:#fafafa}
header{padding:12px 20px;background:#20252b;color:#fff;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0;flex:1} header input{width:320px;padding:4px}
main{max-width:1000px;margin:0 auto;padding:12px 20px} h2{margin:24px 0 8px;text-transform:capitalize}
details{background:#fff;border:1px solid #ddd;border-radius:6px;margin:6px 0}
summary{cursor:pointer;padding:8px;display:flex;gap:10px;align-items:center}
.m{font:bold 12px monospace;padding:2px 6px;border-radius:4px;color:#fff;min-width:52px;text-align:center}
.get{background:#2f7ed8}.post{background:#2a9d55}.delete{background:#c0392b}
code,pre,textarea{font:12px ui-monospace,monospace} .body{padding:8px 12px;border-top:1px solid #eee}
pre{background:#f3f3f3;padding:8px;overflow:auto;max-height:360px;white-space:pre-wrap}
label{display:block;margin:4px 0} label span{display:inline-block;min-width:120px}
textarea{width:100%;min-height:110px} .lock{color:#b9770e}
</style></head><body>
<header><h1>Weak-to-strong lab API</h1><label>token <input id="token" type="password" placeholder="Bearer token for POST/DELETE"></label></header>
<main id="main">Loading /api/openapi.json…</main>
<script>
const main = document.getElementById("main");
const tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("labToken") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("labToken", tokenInput.value));
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "text" ? (node.textContent = v) : node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
};
function resolve(doc, schema) {
  if (schema && schema.$ref) return resolve(doc, doc.components.schemas[schema.$ref.split("/").pop()]);
  return schema || {};
}
function example(doc, schema, depth = 0) {
  schema = resolve(doc, schema);
  if (schema.default !== undefined) return schema.default;
  if (schema.allOf) return example(doc, schema.allOf[0], depth);
  if (schema.oneOf) return example(doc, schema.oneOf[0], depth);
  if (schema.enum) return schema.enum[0];
  if (schema.type === "object" && depth < 4) {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties || {})) {
      if ((schema.required || []).includes(k)) out[k] = example(doc, v, depth + 1);
    }
    return out;
  }
  if (schema.type === "array") return [];
  if (schema.type === "integer" || schema.type === "number") return schema.minimum > 0 ? schema.minimum : 0;
  if (schema.type === "boolean") return false;
  return "";
}
function operationView(doc, path, method, op) {
  const inputs = {};
  const form = el("div", { class: "body" });
  form.append(el("p", { text: op.summary }));
  for (const p of op.parameters || []) {
    const input = el("input", { placeholder: p.schema.type || "" });
    inputs[p.in + ":" + p.name] = input;
    form.append(el("label", {}, el("span", { text: p.name + (p.required ? " *" : "") + " (" + p.in + ")" }), input));
  }
  let bodyArea;
  const json = op.requestBody && op.requestBody.content["application/json"];
  if (json) {
    bodyArea = el("textarea");
    bodyArea.value = JSON.stringify(example(doc, json.schema), null, 2);
    form.append(el("div", { text: "JSON body:" }), bodyArea);
    form.append(el("details", {}, el("summary", { text: "body schema" }),
      el("pre", { text: JSON.stringify(resolve(doc, json.schema), null, 2) })));
  }
  const out = el("pre", { text: "" });
  const send = el("button", { text: "Send" });
  send.addEventListener("click", async () => {
    let url = "/api" + path.replace(/\\{(\\w+)\\}/g, (_, n) => encodeURIComponent(inputs["path:" + n].value));
    const qs = new URLSearchParams();
    for (const [key, input] of Object.entries(inputs)) {
      if (key.startsWith("query:") && input.value !== "") qs.set(key.slice(6), input.value);
    }
    if ([...qs].length) url += "?" + qs;
    const headers = {};
    if (tokenInput.value) headers.Authorization = "Bearer " + tokenInput.value;
    if (bodyArea) headers["Content-Type"] = "application/json";
    out.textContent = method.toUpperCase() + " " + url + " …";
    if (path === "/events") {
      const source = new EventSource(url);
      out.textContent = "";
      source.onmessage = source.onerror = null;
      for (const name of ["snapshot", "job", "ping"]) {
        source.addEventListener(name, (e) => { out.textContent += name + ": " + e.data + "\\n"; });
      }
      setTimeout(() => source.close(), 30000);
      return;
    }
    try {
      const res = await fetch(url, { method: method.toUpperCase(), headers, body: bodyArea ? bodyArea.value : undefined });
      const text = await res.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
      out.textContent = res.status + " " + res.statusText + "\\n\\n" + shown;
    } catch (err) { out.textContent = String(err); }
  });
  form.append(send, out);
  const title = el("summary", {}, el("span", { class: "m " + method, text: method.toUpperCase() }),
    el("code", { text: "/api" + path }));
  if (op.security) title.append(el("span", { class: "lock", text: "🔒 token" }));
  return el("details", {}, title, form);
}
fetch("/api/openapi.json").then((r) => r.json()).then((doc) => {
  main.textContent = "";
  main.append(el("p", { text: doc.info.description }));
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) (byTag[op.tags[0]] ||= []).push([path, method, op]);
  }
  for (const [tag, ops] of Object.entries(byTag)) {
    main.append(el("h2", { text: tag }));
    for (const [path, method, op] of ops) main.append(operationView(doc, path, method, op));
  }
}).catch((err) => { main.textContent = "Could not load the OpenAPI document: " + err; });
</script></body></html>
`;
