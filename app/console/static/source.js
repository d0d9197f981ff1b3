// What a console URL reads: the log routes of the gateway for a node, a task, an app or a
// role, and how one server-sent event becomes one line.

const enc = encodeURIComponent;
const PALETTE = 8;

export function parseRoute(pathname) {
  const rest = pathname.replace(/^\/console\/?/, "");
  const [kind, ...parts] = rest.split("/");
  const value = parts.map(decodeURIComponent).join("/");
  if (!value) return { kind: "home" };
  if (kind === "nodes") return { kind: "node", id: value };
  if (kind === "tasks") return { kind: "task", id: value };
  if (kind === "apps") return { kind: "app", id: "/" + value.replace(/^\/+|\/+$/g, "") };
  if (kind === "roles") return { kind: "role", id: value };
  return { kind: "unknown" };
}

export function routeUrl(kind, id) {
  if (kind === "app") return "/console/apps" + id.split("/").map(enc).join("/");
  const plural = { node: "nodes", task: "tasks", role: "roles" }[kind];
  return `/console/${plural}/${enc(id)}`;
}

function nodeBase(id) {
  if (id === "leader") return "/system/v1/leader/mesos/logs/v1";
  if (id === "master") return "/system/v1/logs/v1";
  return `/system/v1/agent/${enc(id)}/logs/v1`;
}

// {title, subtitle, merged, range, stream, download, streams, units} or a reason it cannot be.
export function describe(route, catalog) {
  if (route.kind === "node") {
    const node = catalog.nodes.find((n) => n.id === route.id);
    if (!node) return { missing: `No node ${route.id} that you may read.` };
    const base = nodeBase(route.id);
    return {
      title: node.kind === "agent" ? `Agent ${node.id}` : node.kind === "leader" ? "Leading master" : "Master",
      subtitle: `${node.hostname} · whole journal`,
      merged: false, units: true, streams: false,
      range: `${base}/range/`, stream: `${base}/stream/`, download: `${base}/range/download`,
    };
  }
  if (route.kind === "task") {
    const task = catalog.tasks.find((t) => t.id === route.id);
    if (!task) return { missing: `No task ${route.id} that you may read.` };
    const path = `framework/${enc(task.framework_id)}/executor/${enc(task.executor_id)}/container/${enc(task.container_id)}`;
    const base = `/system/v1/agent/${enc(task.agent_id)}/logs/v1`;
    return {
      title: `Task ${task.name || task.id}`,
      subtitle: `${task.id} · ${task.state} · agent ${task.agent_id}${task.app_id ? " · app " + task.app_id : ""} · role ${task.role}`,
      merged: false, units: false, streams: true,
      range: `${base}/range/${path}`, stream: `${base}/stream/${path}`, download: `${base}/range/${path}/download`,
    };
  }
  if (route.kind === "app" || route.kind === "role") {
    const known = route.kind === "app" ? catalog.apps.some((a) => a === route.id || a.startsWith(route.id + "/")) : catalog.roles.includes(route.id);
    if (!known) return { missing: `No ${route.kind} ${route.id} with tasks you may read.` };
    const base = route.kind === "app"
      ? "/system/v1/logs/v1/app" + route.id.split("/").map(enc).join("/")
      : `/system/v1/logs/v1/role/${enc(route.id)}`;
    const tasks = catalog.tasks.filter((t) => route.kind === "app" ? t.app_id === route.id || (t.app_id || "").startsWith(route.id + "/") : t.role === route.id);
    return {
      title: route.kind === "app" ? `App ${route.id}` : `Role ${route.id}`,
      subtitle: `${tasks.length} task${tasks.length === 1 ? "" : "s"} merged in time order`,
      merged: true, units: false, streams: true,
      range: `${base}/range/`, stream: `${base}/stream/`, download: `${base}/range/download`,
    };
  }
  return { missing: "Unknown console address." };
}

function text(value) {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return new TextDecoder().decode(new Uint8Array(value)); // non-UTF-8 bytes
  return String(value);
}

function hash(value) {
  let h = 0;
  for (let i = 0; i < value.length; i++) h = (h * 31 + value.charCodeAt(i)) | 0;
  return Math.abs(h);
}

// Short per-task prefixes for merged views: the task's name and 4 characters of its id.
export function prefixer(catalog) {
  const byContainer = new Map(catalog.tasks.map((t) => [t.container_id, t]));
  const byId = new Map(catalog.tasks.map((t) => [t.id, t]));
  const cache = new Map();
  return (fields) => {
    const key = text(fields.TASK_ID) || text(fields.CONTAINER_ID);
    let found = cache.get(key);
    if (!found) {
      const task = byId.get(text(fields.TASK_ID)) || byContainer.get(text(fields.CONTAINER_ID));
      const name = task ? task.name || task.id : text(fields.TASK_ID) || text(fields.CONTAINER_ID).slice(0, 8);
      // The first run of hex digits (a Marathon task id's UUID) tells instances apart.
      const tail = ((task ? task.id : key).match(/[0-9a-f]{6,}/i) || [""])[0].slice(0, 4);
      found = { label: tail ? `${name}·${tail}` : name, colour: `c${hash(key) % PALETTE}`, title: task ? task.id : key };
      cache.set(key, found);
    }
    return found;
  };
}

// One event → one line: what the view shows and what paging and permalinks need.
export function toLine(event, prefix, merged = false) {
  const entry = JSON.parse(event.data);
  const fields = entry.fields || {};
  const cursor = entry.cursor || "";
  const agent = text(fields.AGENT_ID);
  const ts = Number(entry.realtime_timestamp) || cursorTime(cursor);
  const priority = Number(text(fields.PRIORITY));
  // Merged: the composite cursor of the stream at this entry, its place (where a read or a
  // follow resumes, what a permalink names). In a follow, a search's before-context line
  // comes without one (`context=`: just before its match, maybe behind later lines of other
  // tasks) and is no place: its id is "", and nothing resumes, pages or links from it.
  const id = merged ? event.id || "" : event.id || cursor;
  return {
    id,
    key: merged ? `${agent} ${cursor}` : id, // the same entry read twice is shown once
    jc: cursor, // the entry's own journald cursor
    agent,
    ts,
    msg: text(fields.MESSAGE),
    stderr: text(fields.STREAM) === "STDERR",
    level: Number.isNaN(priority) || text(fields.PRIORITY) === "" ? "" : priority <= 3 ? "p-err" : priority === 4 ? "p-warn" : "",
    unit: text(fields.UNIT) ? ["UNIT", text(fields.UNIT)] : text(fields._SYSTEMD_UNIT) ? ["_SYSTEMD_UNIT", text(fields._SYSTEMD_UNIT)] : null,
    prefix: prefix ? prefix(fields) : null,
    // A server-side search (grep=) marks its context lines `match: false` and the first line
    // of each new group `gap: true` (issue 14); a read without grep= has neither.
    match: entry.match !== false,
    gap: entry.gap === true,
  };
}

export function cursorTime(cursor) {
  const m = /(?:^|;)t=([0-9a-f]+)/.exec(cursor || "");
  return m ? parseInt(m[1], 16) : 0;
}

// A merged stream's composite cursor names each agent's last journald cursor; the entry it
// was made at is the latest of them (the merge releases entries in time order).
export function compositeEntry(cursor) {
  const m = /^m\d+\.(.+)$/.exec(cursor || "");
  if (!m) return null;
  try {
    const json = JSON.parse(atob(m[1].replace(/-/g, "+").replace(/_/g, "/") + "===".slice((m[1].length + 3) % 4)));
    let best = null;
    for (const [agent, jc] of Object.entries(json.a || {})) {
      const t = cursorTime(jc);
      if (!best || t > best.t || (t === best.t && agent > best.agent)) best = { agent, jc, t };
    }
    return best;
  } catch {
    return null;
  }
}
