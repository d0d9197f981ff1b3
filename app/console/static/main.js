// The console's page: sign-in, the list of what the caller may read, one log view, keys.

import { byId, el, show } from "./dom.js";
import { getCatalog, signIn, signOut } from "./api.js";
import { LogView, MAX_CONTEXT, MAX_LINES } from "./logview.js";
import { describe, parseRoute, prefixer, routeUrl } from "./source.js";

const THEME_KEY = "logway-console-theme"; // the only thing the console stores
let view = null;
let catalog = null;

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
}

function showSignIn() {
  show(byId("signin"), true);
  show(byId("browse"), false);
  show(byId("viewer"), false);
  show(byId("home"), false);
  show(byId("signout"), false);
  byId("who").textContent = "";
  byId("uid").focus();
}

async function submitSignIn(event) {
  event.preventDefault();
  const error = byId("signin-error");
  error.textContent = "";
  try {
    await signIn(byId("uid").value, byId("password").value);
    byId("password").value = "";
    await start();
  } catch (failure) {
    error.textContent = failure.status === 401 ? "Wrong user or password." : failure.message;
  }
}

function listSection(title, items, current) {
  if (!items.length) return null;
  return el("section", {},
    el("h3", { text: title }),
    el("ul", {}, ...items.map((item) => el("li", { className: item.href === current ? "current" : null, "data-search": item.search },
      el("a", { href: item.href }, item.label), item.meta ? el("span", { className: "meta" }, item.meta) : null))));
}

function renderBrowse() {
  const current = location.pathname;
  const nodes = catalog.nodes.map((n) => ({
    href: routeUrl("node", n.id), label: n.kind === "agent" ? n.id : n.kind, meta: n.hostname, search: `${n.id} ${n.hostname}`,
  }));
  const apps = catalog.apps.map((a) => ({ href: routeUrl("app", a), label: a, search: a }));
  const roles = catalog.roles.map((r) => ({ href: routeUrl("role", r), label: r, search: r }));
  const tasks = [...catalog.tasks]
    .sort((a, b) => Number(a.completed) - Number(b.completed) || (a.name || a.id).localeCompare(b.name || b.id))
    .map((t) => ({
      href: routeUrl("task", t.id), label: t.name || t.id,
      meta: `${t.state.replace("TASK_", "").toLowerCase()} · ${t.agent_id.split("-").pop()}${t.app_id ? " · " + t.app_id : ""}`,
      search: `${t.id} ${t.name} ${t.app_id || ""} ${t.role} ${t.agent_id}`,
    }));
  byId("browse-lists").replaceChildren(...[
    listSection("Nodes", nodes, current), listSection("Apps", apps, current),
    listSection("Roles", roles, current), listSection("Tasks", tasks, current),
  ].filter(Boolean));
  if (!nodes.length && !apps.length && !tasks.length) {
    byId("browse-lists").append(el("p", { className: "meta", text: "Nothing you may read yet." }));
  }
}

function filterBrowse() {
  const words = byId("browse-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const li of byId("browse-lists").querySelectorAll("li")) {
    const text = (li.dataset.search || "").toLowerCase();
    li.hidden = !words.every((w) => text.includes(w));
  }
}

// The console URL's query: what the log reads take (filter, grep, since) and where to start.
function readParams(query, source) {
  const params = new URLSearchParams();
  for (const f of query.getAll("filter")) params.append("filter", f);
  const stream = query.get("stream");
  if (source.streams && stream) params.append("filter", `STREAM:${stream}`);
  const unit = query.get("unit");
  if (source.units && unit) params.append("filter", unit);
  if (query.get("grep")) {
    params.set("grep", query.get("grep"));
    // Context lines around each match (on merged views too: there a match's before-context
    // arrives just before it, behind later lines of other tasks, and is no place to resume).
    const context = query.get("context");
    if (context && context !== "0") params.set("context", context);
  }
  return params;
}

// The URL change for a server-side search: the pattern and the context lines around each match.
function serverSearch(grep) {
  const context = Number(byId("context").value);
  return { grep, context: grep && context > 0 ? String(Math.min(context, MAX_CONTEXT)) : "" };
}

function setQuery(change) {
  const query = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(change)) {
    query.delete(key);
    for (const v of [].concat(value)) if (v) query.append(key, v);
  }
  query.delete("cursor");
  history.replaceState(null, "", `${location.pathname}${query.size ? "?" + query : ""}`);
  openView();
}

function openView() {
  const route = parseRoute(location.pathname);
  if (route.kind === "home") {
    show(byId("viewer"), false);
    show(byId("home"), true);
    return;
  }
  show(byId("home"), false);
  show(byId("viewer"), true);
  const source = describe(route, catalog);
  byId("title").textContent = source.title || "Not found";
  byId("subtitle").textContent = source.subtitle || "";
  if (source.missing) {
    view.close();
    view.lines = [];
    view.render();
    const problem = byId("problem");
    problem.textContent = source.missing;
    show(problem, true);
    return;
  }
  const query = new URLSearchParams(location.search);
  const params = readParams(query, source);
  show(byId("streams"), source.streams);
  const stream = query.get("stream") || "";
  for (const b of byId("streams").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.stream === stream));
  show(byId("unit-box"), source.units);
  byId("filters").value = query.getAll("filter").join(" ");
  const since = query.get("since") || "";
  byId("since").value = since ? toLocalInput(since) : "";
  byId("server-search").checked = Boolean(query.get("grep"));
  if (query.get("grep")) byId("search").value = query.get("grep");
  byId("context").value = query.get("context") || "0";
  const download = byId("download");
  show(download, Boolean(source.download));
  if (source.download) {
    const d = new URLSearchParams(params);
    if (stream) d.set("postfix", stream.toLowerCase());
    download.href = `${source.download}?${d}`;
  }
  view.open(source, params, {
    cursor: query.get("cursor") || "",
    since: since,
    prefix: source.merged ? prefixer(catalog) : null,
  });
  view.search(byId("search").value);
}

function toLocalInput(since) {
  const d = new Date(since);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function updateUnits() {
  const select = byId("unit");
  const current = new URLSearchParams(location.search).get("unit") || "";
  const units = view.units();
  const values = new Set([...select.options].map((o) => o.value));
  for (const [field, unit] of units) {
    const value = `${field}:${unit}`;
    if (!values.has(value)) select.append(el("option", { value }, unit));
  }
  if (current && !values.has(current) && !units.some(([f, u]) => `${f}:${u}` === current)) {
    select.append(el("option", { value: current }, current.split(":").slice(1).join(":")));
  }
  select.value = current;
}

function onState(state) {
  const parts = [`${state.lines} lines (at most ${MAX_LINES})`];
  if (state.dropped) parts.push(`${state.dropped} oldest dropped`);
  parts.push(state.live ? (state.following ? "following" : "live, paused") : "not live");
  if (state.atBeginning) parts.push("beginning of the log loaded");
  if (state.loading) parts.push("loading…");
  byId("status").textContent = parts.join(" · ");
  show(byId("reconnecting"), state.reconnecting);
  show(byId("newest"), !state.following);
  byId("follow").setAttribute("aria-pressed", String(state.following));
  const problem = byId("problem");
  problem.textContent = state.problem;
  show(problem, Boolean(state.problem));
  const query = byId("search").value;
  byId("count").textContent = query ? (state.matches ? `${state.current >= 0 ? state.current + 1 : "–"} of ${state.matches}` : "no match") : "";
  if (!byId("unit-box").hidden) updateUnits();
  if (state.problem.startsWith("Signed out")) showSignIn();
}

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;
}

function onKey(event) {
  if (byId("viewer").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (typing(event.target)) {
    if (event.target === byId("search") && event.key === "Escape") event.target.blur();
    return;
  }
  if (event.key === "/") {
    event.preventDefault();
    byId("search").focus();
    byId("search").select();
  } else if (event.key === "n") view.step(1);
  else if (event.key === "N") view.step(-1);
  else if (event.key === "End") {
    event.preventDefault();
    view.jumpToNewest();
  } else if (event.key === "f") view.setFollow(!view.following);
}

function wire() {
  applyTheme(localStorage.getItem(THEME_KEY));
  byId("theme").addEventListener("click", toggleTheme);
  byId("signin-form").addEventListener("submit", submitSignIn);
  byId("signout").addEventListener("click", async () => {
    view.close();
    await signOut();
    location.assign("/console/");
  });
  byId("browse-filter").addEventListener("input", filterBrowse);
  view = new LogView({ box: byId("log"), rows: byId("rows"), spacer: byId("spacer"), onState });
  for (const b of byId("streams").querySelectorAll("button")) {
    b.addEventListener("click", () => setQuery({ stream: b.dataset.stream }));
  }
  byId("unit").addEventListener("change", (e) => setQuery({ unit: e.target.value }));
  byId("filter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const since = byId("since").value ? new Date(byId("since").value).toISOString() : "";
    setQuery({ filter: byId("filters").value.split(/\s+/).filter(Boolean), since });
  });
  byId("search").addEventListener("input", (e) => {
    if (!byId("server-search").checked) view.search(e.target.value);
  });
  byId("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (byId("server-search").checked) setQuery(serverSearch(byId("search").value));
    else view.step(1);
  });
  byId("search").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.shiftKey) {
      e.preventDefault();
      view.step(-1);
    }
  });
  byId("server-search").addEventListener("change", (e) => setQuery(serverSearch(e.target.checked ? byId("search").value : "")));
  byId("context").addEventListener("change", () => {
    if (byId("server-search").checked) setQuery(serverSearch(byId("search").value));
  });
  byId("next").addEventListener("click", () => view.step(1));
  byId("prev").addEventListener("click", () => view.step(-1));
  byId("follow").addEventListener("click", () => view.setFollow(!view.following));
  byId("newest").addEventListener("click", () => view.jumpToNewest());
  document.addEventListener("keydown", onKey);
  // A page kept in the back/forward cache must not keep its stream: browsers allow six
  // connections per host, and hidden pages holding them stall every other request.
  addEventListener("pagehide", () => view.close());
  addEventListener("pageshow", (event) => {
    if (event.persisted && catalog) openView();
  });
}

async function start() {
  try {
    catalog = await getCatalog();
  } catch (failure) {
    if (failure.status === 401) return showSignIn();
    byId("main").replaceChildren(el("p", { className: "error", text: `The console cannot start: ${failure.message}` }));
    return;
  }
  show(byId("signin"), false);
  show(byId("browse"), true);
  show(byId("signout"), true);
  byId("who").textContent = `signed in as ${catalog.uid}`;
  renderBrowse();
  openView();
}

wire();
start();
