// enricher's operator pages. Plain DOM code: the pages must render where there is no network
// beyond this server, so there is no library to load.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");

// withToken carries ?token= on to the next page, for a server behind --web-token.
function withToken(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function getJSON(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const resp = await fetch(path, { headers, cache: "no-store" });
  const body = await resp.json();
  return { status: resp.status, body };
}

// el makes an element with text (never HTML: keys and reasons come from outside).
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function stateBadge(state, extraClass) {
  return el("span", state, "state " + (extraClass || state));
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else if (c && typeof c === "object") { td.textContent = c.text; td.className = c.cls || ""; }
    else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

const num = (n) => ({ text: n === undefined || n === null ? "" : Number(n).toLocaleString("en"), cls: "num" });

function nav() {
  const header = document.getElementById("nav");
  header.appendChild(el("span", "enricher", "brand"));
  const links = el("nav");
  for (const [href, name, page] of [["/", "Home", "index"], ["/monitor", "Monitor", "monitor"], ["/query", "Query", "query"], ["/group", "Group", "group"]]) {
    const a = el("a", name, document.body.dataset.page === page ? "here" : "");
    a.href = withToken(href);
    links.appendChild(a);
  }
  header.appendChild(links);
  for (const a of document.querySelectorAll("a[data-link]")) a.href = withToken(a.getAttribute("href"));
}

function recovery(p) {
  if (p.state !== "running") {
    return p.hwm > 0 ? "restoring: " + p.remaining.toLocaleString("en") + " records to go" : p.state;
  }
  if (p.recovery_started && p.recovered) {
    const ms = new Date(p.recovered) - new Date(p.recovery_started);
    if (ms >= 0) return "took " + (ms / 1000).toFixed(1) + " s";
  }
  return "";
}

function sum(obj) {
  return Object.values(obj || {}).reduce((a, v) => a + (typeof v === "object" ? v.records : v), 0);
}

let previous = null;

async function monitor() {
  const error = document.getElementById("error");
  let v;
  try {
    v = (await getJSON("/api/replica")).body;
    error.textContent = "";
  } catch (e) {
    error.textContent = "cannot read /api/replica: " + e;
    return;
  }
  document.getElementById("replica").textContent = v.web ? "replica " + v.web : "";
  const facts = document.getElementById("facts");
  facts.replaceChildren();
  const rate = (name) => {
    if (!previous) return "…";
    const secs = (new Date(v.time) - new Date(previous.time)) / 1000;
    return secs > 0 ? Math.max(0, (v.counters[name] - previous.counters[name]) / secs).toFixed(1) : "…";
  };
  const fact = (label, value, id) => {
    const d = el("div");
    d.appendChild(el("span", label));
    const b = el("b");
    if (value instanceof Node) b.appendChild(value); else b.textContent = value;
    if (id) b.id = id;
    d.appendChild(b);
    facts.appendChild(d);
  };
  fact("Group", v.group);
  fact("Table", v.table);
  fact("Processor", stateBadge(v.state), "processor-state");
  fact("Inputs / s", rate("inputs"), "input-rate");
  fact("Outputs / s", rate("outputs"), "output-rate");
  fact("Inputs", v.counters.inputs.toLocaleString("en"));
  fact("Outputs", v.counters.outputs.toLocaleString("en"));
  fact("Scores applied", v.counters.scores.toLocaleString("en"));
  fact("Dead letters", v.counters.dead_letters.toLocaleString("en"));
  fact("Rebalances", v.counters.rebalances);
  previous = v;

  const body = document.querySelector("#partitions tbody");
  body.replaceChildren();
  if (v.partitions.length === 0) {
    body.appendChild(row([el("span", "no partition on this replica (" + v.state + ")", "muted")]));
  }
  for (const p of v.partitions) {
    body.appendChild(row([
      p.partition, p.mode, stateBadge(p.state), num(p.input_offset), num(p.input_lag), num(p.scores_offset), num(p.scores_lag),
      recovery(p), num(sum(p.input)), num(sum(p.output)),
      p.waiting ? p.waiting.topic : "",
    ], { "data-partition": p.partition, "data-state": p.state, "data-mode": p.mode }));
  }
}

async function query(key) {
  const card = document.getElementById("answer");
  let r;
  try {
    r = await getJSON("/scores/" + encodeURIComponent(key));
  } catch (e) {
    r = { status: 0, body: { key, score: null, reason: String(e) } };
  }
  const a = r.body;
  document.getElementById("a-key").textContent = a.key;
  document.getElementById("a-score").textContent = a.score === null || a.score === undefined ? "none" : a.score;
  document.getElementById("a-partition").textContent = a.partition;
  document.getElementById("a-owner").textContent = (a.owner || "unknown") + (a.standby ? " (answered by standby " + a.answered_by + ")" : "");
  const status = document.getElementById("a-status");
  status.textContent = r.status === 200 ? "found" : r.status === 404 ? "no score" : "unavailable (" + r.status + ")";
  status.className = "state s" + r.status;
  card.dataset.status = String(r.status);
  document.getElementById("a-reason").textContent = a.reason || a.note || "";
  document.getElementById("a-json").textContent = JSON.stringify(a, null, 2);
  card.hidden = false;
}

async function group() {
  const error = document.getElementById("error");
  let r;
  try {
    r = await getJSON("/api/group");
  } catch (e) {
    error.textContent = "cannot read /api/group: " + e;
    return;
  }
  const g = r.body;
  error.textContent = g.error || "";
  document.getElementById("group-name").textContent = g.group;
  const st = document.getElementById("group-state");
  st.textContent = g.state || "unknown";
  st.className = "state " + (g.state || "error");
  const body = document.querySelector("#members tbody");
  body.replaceChildren();
  for (const m of g.members) {
    let web = el("span", m.advert && m.advert.web ? m.advert.web : "none", "muted");
    if (m.advert && m.advert.web) {
      web = el("a", m.advert.web);
      web.href = withToken("http://" + m.advert.web + "/monitor");
    }
    const states = m.running.map((p) => p.partition + ": " + p.state).join(", ");
    body.appendChild(row([
      m.member_id + (m.self ? " (this replica)" : ""), m.instance_id || "", m.client_host, web,
      m.partitions.join(", "), stateBadge(m.state), m.error ? el("span", m.error, "error") : states, num(m.lag),
    ], { class: "member", "data-member": m.member_id, "data-state": m.state }));
  }
}

function every(ms, fn) {
  fn();
  setInterval(fn, ms);
}

nav();
switch (document.body.dataset.page) {
  case "monitor":
    every(2000, monitor);
    break;
  case "group":
    every(3000, group);
    break;
  case "query": {
    const form = document.getElementById("lookup");
    const input = document.getElementById("key");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const key = input.value;
      if (!key) return;
      history.replaceState(null, "", withToken("/query?key=" + encodeURIComponent(key)));
      query(key);
    });
    if (params.get("key")) {
      input.value = params.get("key");
      query(params.get("key"));
    }
    break;
  }
}
