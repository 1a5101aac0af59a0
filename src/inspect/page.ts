/**
 * The live view page: the statechart SVG, the current state and the list of inspection events.
 * Everything is inline (no CDN, no external file), so the page works offline. The script reads
 * `/events` (Server-Sent Events) and marks the active states with the `active` class.
 */

const STYLE = `
:root { color-scheme: light; font-family: system-ui, sans-serif; }
body { margin: 0; background: #f6f7f9; color: #1d2330; }
header { padding: 12px 20px; background: #1d2330; color: #fff; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header .server { font-family: ui-monospace, monospace; font-size: 13px; opacity: 0.85; }
#connection { font-size: 13px; margin-left: auto; }
#connection.open::before { content: "● "; color: #4cd37a; }
#connection.closed::before { content: "● "; color: #e05d5d; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 380px; gap: 16px; padding: 16px 20px; }
section { background: #fff; border: 1px solid #d9dde5; border-radius: 8px; padding: 12px 14px; }
h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: 0.04em; color: #5a6275; }
#status-state { font-size: 20px; font-weight: 600; }
#status-message { margin: 4px 0; }
#status-actions { font-size: 13px; color: #5a6275; }
.diagram { overflow: auto; }
svg.statechart { max-width: 100%; height: auto; }
.state rect { fill: #fff; stroke: #7a8499; stroke-width: 1.5; }
.state.compound rect { fill: #eef1f6; stroke-dasharray: 6 4; }
.state text { text-anchor: middle; font-size: 14px; fill: #1d2330; }
.state text.loop { font-size: 10px; fill: #6b7385; }
.state.active rect { fill: #ffe8a3; stroke: #c47f00; stroke-width: 3; }
.state.compound.active rect { fill: #fff6dc; }
.edge path { fill: none; stroke: #a3abbb; stroke-width: 1.2; }
.edge text { font-size: 10px; fill: #4a5264; text-anchor: middle; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.edge.taken path { stroke: #c47f00; stroke-width: 2.5; }
.arrowhead { fill: #8a93a6; }
#history { margin: 0; padding-left: 20px; font-size: 13px; }
#log { list-style: none; margin: 0; padding: 0; font-family: ui-monospace, monospace; font-size: 12px; max-height: 520px; overflow: auto; }
#log li { padding: 2px 0; border-bottom: 1px solid #eef0f4; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#log .kind-snapshot { color: #1b6b3a; }
#log .kind-actor { color: #6b4bb1; }
`

const SCRIPT = `
const MAX_LOG = 300;
const log = document.getElementById("log");
const history = document.getElementById("history");
const connection = document.getElementById("connection");
let previous = [];
let previousLeaf;

const pathsOf = (value, prefix) => {
  if (typeof value === "string") return [prefix + value];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, child]) => [prefix + key, ...pathsOf(child, prefix + key + ".")]);
};

const addLine = (kind, text) => {
  const item = document.createElement("li");
  item.className = "kind-" + kind;
  item.textContent = text;
  log.prepend(item);
  while (log.children.length > MAX_LOG) log.lastElementChild.remove();
};

const showSnapshot = (event) => {
  const paths = pathsOf(event.value, "");
  const leaf = paths[paths.length - 1];
  document.querySelectorAll(".state.active").forEach((node) => node.classList.remove("active"));
  for (const path of paths) document.querySelector('.state[data-state="' + CSS.escape(path) + '"]')?.classList.add("active");
  if (leaf !== previousLeaf) {
    document.querySelectorAll(".edge.taken").forEach((node) => node.classList.remove("taken"));
    for (const source of previous) {
      for (const target of paths) {
        document.querySelector('.edge[data-source="' + CSS.escape(source) + '"][data-target="' + CSS.escape(target) + '"]')?.classList.add("taken");
      }
    }
    const item = document.createElement("li");
    item.textContent = leaf + (event.state ? " (" + event.state + ")" : "");
    history.append(item);
    previousLeaf = leaf;
  }
  previous = paths;
  document.getElementById("status-state").textContent = event.engine ? event.engine.view.kind : leaf;
  document.getElementById("status-message").textContent = event.engine ? event.engine.view.message : "";
  document.getElementById("status-actions").textContent = event.engine && event.engine.view.actions.length > 0 ? "actions: " + event.engine.view.actions.join(", ") : "";
  if (event.engine) document.getElementById("server").textContent = event.engine.serverUrl;
};

const describe = (event) => {
  const time = new Date(event.at).toISOString().slice(11, 23);
  if (event.type === "actor") return time + "  actor   " + event.actor.id;
  if (event.type === "event") return time + "  event   " + event.event.type + " → " + event.actor.id + (event.source ? " (from " + event.source.id + ")" : "");
  const detail = event.machine ? JSON.stringify(event.value) : event.status;
  return time + "  state   " + event.actor.id + " = " + detail + (event.error ? " " + event.error.message : "");
};

const source = new EventSource("events");
source.onopen = () => { connection.textContent = "live"; connection.className = "open"; };
source.onerror = () => { connection.textContent = "disconnected"; connection.className = "closed"; };
source.onmessage = (message) => {
  const event = JSON.parse(message.data);
  addLine(event.type, describe(event));
  if (event.type === "snapshot" && event.machine) showSnapshot(event);
};
`

const escapeHtml = (text: string): string =>
  text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")

/** Builds the page; `nonce` allows its inline script under the server's CSP. */
export const renderPage = (options: { title: string; svg: string; nonce: string }): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(options.title)}</h1>
<span class="server" id="server">waiting for the engine…</span>
<span id="connection" class="closed">connecting</span>
</header>
<main>
<section class="diagram">
<h2>Statechart</h2>
${options.svg}
</section>
<aside>
<section>
<h2>Now</h2>
<div id="status-state">–</div>
<p id="status-message"></p>
<div id="status-actions"></div>
</section>
<section>
<h2>States visited</h2>
<ol id="history"></ol>
</section>
<section>
<h2>Inspection events (newest first)</h2>
<ul id="log"></ul>
</section>
</aside>
</main>
<script nonce="${escapeHtml(options.nonce)}">${SCRIPT}</script>
</body>
</html>
`
