/**
 * GET /docs: a page that reads /openapi.json and lists every operation with its parameters,
 * bodies and responses. Self-contained (no CDN, no assets), so it works offline.
 */
export const docsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Analytics Export API</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem; color: #1d2430; }
  h1 { margin-bottom: .25rem; } code, pre { font: 13px/1.4 ui-monospace, monospace; }
  pre { background: #f4f6f8; padding: .75rem; overflow-x: auto; border-radius: 4px; }
  details.op { border: 1px solid #d8dde3; border-radius: 6px; margin: .5rem 0; }
  details.op > summary { cursor: pointer; padding: .5rem .75rem; }
  details.op > div { padding: 0 .75rem .75rem; }
  .method { display: inline-block; min-width: 4.5rem; font-weight: 700; text-transform: uppercase; }
  .get { color: #0b6bcb; } .post { color: #1a7f37; } .put, .patch { color: #9a6700; } .delete { color: #cf222e; }
  table { border-collapse: collapse; } td, th { text-align: left; padding: .2rem .6rem .2rem 0; vertical-align: top; }
</style>
</head>
<body>
<h1>Analytics Export API</h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<div id="intro"></div>
<div id="ops">Loading…</div>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
// Descriptions are CommonMark; code spans are the only markup they use.
const md = (s) => esc(s).replace(/\`([^\`]+)\`/g, '<code>$1</code>');
fetch('/openapi.json').then((r) => r.json()).then((doc) => {
  // A local reference (#/components/...) to what it names.
  const resolve = (s) => (s && s.$ref ? s.$ref.slice(2).split('/').reduce((o, k) => o[k], doc) : s);
  const schema = (s) => '<pre>' + esc(JSON.stringify(resolve(s), null, 2)) + '</pre>';
  document.getElementById('intro').innerHTML = '<p>' + md(doc.info.description) + '</p>';
  let html = '';
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const params = [...(item.parameters || []), ...(op.parameters || [])];
      html += '<details class="op"><summary><span class="method ' + method + '">' + method + '</span> <code>' + esc(path) + '</code> — ' + esc(op.summary) + '</summary><div>';
      if (op.description) html += '<p>' + md(op.description) + '</p>';
      if (params.length) html += '<h4>Parameters</h4><table>' + params.map((p) => '<tr><td><code>' + esc(p.name) + '</code></td><td>' + esc(p.in) + (p.required ? ', required' : '') + '</td><td>' + esc(p.description || '') + '</td></tr>').join('') + '</table>';
      if (op.requestBody) html += '<h4>Request body</h4>' + schema(op.requestBody.content['application/json'].schema);
      html += '<h4>Responses</h4><table>' + Object.entries(op.responses).map(([code, r]) => '<tr><td><b>' + esc(code) + '</b></td><td>' + md(resolve(r).description) + '</td></tr>').join('') + '</table>';
      html += '</div></details>';
    }
  }
  html += '<h2>Schemas</h2>' + Object.entries(doc.components.schemas).map(([name, s]) => '<h3>' + esc(name) + '</h3>' + schema(s)).join('');
  document.getElementById('ops').innerHTML = html;
}).catch((e) => { document.getElementById('ops').textContent = 'Could not load /openapi.json: ' + e; });
</script>
</body>
</html>
`;
