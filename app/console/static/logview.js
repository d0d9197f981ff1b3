// The log view: a bounded list of lines, windowed rendering (only the visible rows are in the
// DOM), live tail over SSE with resume, paging back (reverse reads) and forward, search.

import { el } from "./dom.js";
import { readEvents, HttpError } from "./api.js";
import { toLine, compositeEntry } from "./source.js";

export const LINE_HEIGHT = 18; // px, as --line-height in console.css
export const MAX_LINES = 10000; // lines kept in memory; the oldest go first
export const PAGE = 400; // lines per range read (DC/OS's UI read 400 per page)
export const CONTEXT = 50; // lines shown before and after a permalinked line
export const MAX_CONTEXT = 100; // the API's most context= lines (app/journal/search.py)
const OVERSCAN = 20; // rows rendered above and below the visible ones
const EDGE = 60 * LINE_HEIGHT; // this close to an end, the next page loads
const RETRY_MS = [500, 1000, 2000, 5000];

function timeText(us) {
  if (!us) return "";
  const d = new Date(us / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// The grep= pattern as a JavaScript RegExp, for the marks only (the API decides what matches):
// RE2's leading `(?i)` becomes the `i` flag; a pattern JavaScript cannot read gets no marks.
export function patternOf(grep) {
  const insensitive = grep.startsWith("(?i)");
  try {
    return new RegExp(insensitive ? grep.slice(4) : grep, insensitive ? "gi" : "g");
  } catch {
    return null;
  }
}

function regexHits(pattern, msg) {
  const hits = [];
  if (!pattern) return hits;
  pattern.lastIndex = 0;
  for (let m = pattern.exec(msg); m; m = pattern.exec(msg)) {
    if (m[0].length === 0) {
      pattern.lastIndex++; // an empty match marks nothing
      continue;
    }
    hits.push([m.index, m.index + m[0].length]);
  }
  return hits;
}

function substringHits(query, msg) {
  const hits = [];
  if (!query) return hits;
  const lower = msg.toLowerCase();
  for (let hit = lower.indexOf(query); hit >= 0; hit = lower.indexOf(query, hit + query.length)) {
    hits.push([hit, hit + query.length]);
  }
  return hits;
}

export class LogView {
  constructor({ box, rows, spacer, onState }) {
    this.box = box;
    this.rows = rows;
    this.spacer = spacer;
    this.onState = onState; // called with a summary whenever something visible changes
    this.lines = [];
    this.generation = 0;
    this.query = "";
    this.matches = [];
    this.current = -1;
    this.box.addEventListener("scroll", () => this.scrolled());
    new ResizeObserver(() => this.render()).observe(this.box);
  }

  // source: {range, stream, merged}; params: URLSearchParams for every read; start: how.
  open(source, params, { cursor = "", since = "", prefix = null } = {}) {
    this.close();
    this.generation++;
    Object.assign(this, {
      source, params, prefix, lines: [], pending: [], linked: cursor,
      pattern: params.get("grep") ? patternOf(params.get("grep")) : null,
      atBeginning: false, atEnd: false, live: false, following: !cursor && !since,
      loadingOlder: false, loadingNewer: false, reconnecting: false, problem: "", dropped: 0,
    });
    this.seen = new Set();
    this.render();
    const gen = this.generation;
    const first = cursor ? this.permalink(cursor) : since ? this.fromTime(since) : this.tail();
    first.catch((error) => this.fail(error, gen));
  }

  close() {
    this.generation++;
    if (this.events) this.events.close();
    this.events = null;
    clearTimeout(this.retryTimer);
  }

  url(path, extra) {
    const q = new URLSearchParams(this.params);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return `${path}?${q}`;
  }

  async read(extra) {
    const gen = this.generation;
    const events = await readEvents(this.url(this.source.range, extra));
    if (gen !== this.generation) throw new Error("superseded");
    return events.map((e) => toLine(e, this.prefix, this.source.merged));
  }

  async tail() {
    const lines = await this.read({ skip_prev: PAGE });
    this.atBeginning = lines.length < PAGE;
    this.append(lines);
    this.startLive();
  }

  async fromTime(since) {
    const lines = await this.read({ since, limit: PAGE });
    this.append(lines);
    if (lines.length < PAGE) this.startLive();
    this.notify();
  }

  async permalink(cursor) {
    let before, after;
    if (this.source.merged) {
      const entry = compositeEntry(cursor);
      if (!entry) throw new HttpError(400, "This link's cursor is not a merged-stream cursor.");
      before = await this.read({ until: String(entry.t), skip_prev: CONTEXT + 1 });
      after = await this.read({ cursor, limit: CONTEXT });
      const hit = before.find((l) => l.jc === entry.jc && l.agent === entry.agent);
      if (hit) hit.id = cursor;
      before = before.filter((l) => l.ts <= entry.t);
    } else {
      before = await this.read({ cursor, skip_prev: CONTEXT + 1, limit: 2 * CONTEXT + 1 });
      after = [];
    }
    this.append([...before, ...after]);
    const index = this.lines.findIndex((l) => l.id === cursor);
    this.problem = index < 0 ? "The linked line is not in this log (any more)." : "";
    this.atEnd = false;
    this.render();
    if (index >= 0) this.scrollToLine(index, true);
    this.scrolled();
  }

  // The last loaded line that is a place to resume from (on a merged view, a search's
  // before-context line is none).
  lastPlace() {
    for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i].id) return this.lines[i];
    return null;
  }

  startLive() {
    const gen = this.generation;
    const last = this.lastPlace();
    const extra = last ? { cursor: last.id } : { skip_prev: 0 };
    const events = new EventSource(this.url(this.source.stream, extra));
    // EventSource gives an event without an id the last id it saw: on a merged view, that is
    // a search's before-context line, which has no place of its own (a placed entry always
    // brings a new composite cursor). A node's events carry their journald cursor anyway.
    let lastId = "";
    this.events = events;
    this.live = true;
    this.atEnd = true;
    events.onopen = () => {
      this.reconnecting = false;
      this.retries = 0;
      this.notify();
    };
    events.onmessage = (event) => {
      if (gen !== this.generation) return;
      const merged = this.source.merged;
      const id = merged && event.lastEventId !== lastId ? event.lastEventId : "";
      lastId = event.lastEventId;
      this.pending.push(toLine({ id, data: event.data }, this.prefix, merged));
      if (!this.flushing) {
        this.flushing = true;
        requestAnimationFrame(() => this.flush());
      }
    };
    events.onerror = () => {
      if (gen !== this.generation) return;
      this.reconnecting = true; // EventSource resumes by itself with Last-Event-ID
      if (events.readyState === EventSource.CLOSED) {
        // An HTTP error. EventSource hides its status, so one small range read asks: signed
        // out (401) or no longer allowed (403) ends the tail with that message; anything else
        // (a gateway restarting answers 502/503) starts again from the last line.
        events.close();
        const retry = () => {
          const wait = RETRY_MS[Math.min(this.retries || 0, RETRY_MS.length - 1)];
          this.retries = (this.retries || 0) + 1;
          this.retryTimer = setTimeout(() => gen === this.generation && this.startLive(), wait);
        };
        readEvents(this.url(this.source.range, { skip_prev: 1 })).then(retry, (error) => {
          if (error.status !== 401 && error.status !== 403) return retry();
          this.reconnecting = false;
          this.live = false;
          this.fail(error, gen);
        });
      }
      this.notify();
    };
    this.notify();
  }

  flush() {
    this.flushing = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length) this.append(batch);
  }

  // Lines after the last one (live or forward paging).
  append(lines) {
    if (!lines.length) return this.render();
    const fresh = lines.filter((l) => !this.seen.has(l.key));
    for (const l of fresh) this.seen.add(l.key);
    this.lines.push(...fresh);
    const over = this.lines.length - MAX_LINES;
    if (over > 0) {
      for (const l of this.lines.splice(0, over)) this.seen.delete(l.key);
      this.atBeginning = false;
      this.dropped += over;
      if (!this.following) this.box.scrollTop -= over * LINE_HEIGHT;
    }
    this.refreshMatches();
    this.render();
    if (this.following) this.box.scrollTop = this.box.scrollHeight;
    this.notify();
  }

  // Lines before the first one (paging back), keeping what is on screen where it is.
  prepend(lines) {
    const fresh = lines.filter((l) => !this.seen.has(l.key));
    for (const l of fresh) this.seen.add(l.key);
    this.lines.unshift(...fresh);
    const over = this.lines.length - MAX_LINES;
    if (over > 0) {
      // Paging far back drops the newest lines: the view leaves the live tail.
      for (const l of this.lines.splice(this.lines.length - over, over)) this.seen.delete(l.key);
      this.detach();
    }
    this.refreshMatches();
    this.render();
    this.box.scrollTop += fresh.length * LINE_HEIGHT;
    return fresh.length;
  }

  detach() {
    if (this.events) this.events.close();
    this.events = null;
    this.live = false;
    this.atEnd = false;
    this.following = false;
  }

  async loadOlder() {
    if (this.loadingOlder || this.atBeginning || !this.lines.length) return;
    this.loadingOlder = true;
    const gen = this.generation;
    try {
      const first = this.lines[0];
      let older;
      if (this.source.merged) {
        // Merged reads cannot run backwards: the last PAGE entries up to the first one's time.
        older = await this.read({ until: String(first.ts), skip_prev: PAGE });
        older = older.filter((l) => !this.seen.has(l.key));
      } else {
        older = (await this.read({ cursor: first.jc, read_reverse: "true", limit: PAGE })).reverse();
      }
      if (gen !== this.generation) return;
      const added = this.prepend(older);
      if (older.length < PAGE || added === 0) this.atBeginning = true;
    } catch (error) {
      this.fail(error, gen);
    } finally {
      this.loadingOlder = false;
      this.render();
      this.notify();
    }
  }

  async loadNewer() {
    if (this.loadingNewer || this.live || !this.lines.length) return;
    this.loadingNewer = true;
    const gen = this.generation;
    try {
      const last = this.lastPlace();
      if (!last) return this.startLive();
      const newer = await this.read({ cursor: last.id, limit: PAGE });
      if (gen !== this.generation) return;
      this.append(newer);
      if (newer.length < PAGE) this.startLive();
    } catch (error) {
      this.fail(error, gen);
    } finally {
      this.loadingNewer = false;
    }
  }

  fail(error, gen) {
    if (gen !== this.generation || error.message === "superseded") return;
    const status = error.status;
    this.problem = status === 401 ? "Signed out: sign in again." : status === 403 ? `Not allowed: ${error.message}` : `Could not read the log: ${error.message}`;
    this.notify();
  }

  scrolled() {
    const box = this.box;
    const bottom = box.scrollTop + box.clientHeight >= box.scrollHeight - LINE_HEIGHT;
    if (this.live) this.following = bottom;
    if (box.scrollTop < EDGE) this.loadOlder();
    if (!this.live && box.scrollHeight - box.scrollTop - box.clientHeight < EDGE) this.loadNewer();
    this.render();
    this.notify();
  }

  setFollow(on) {
    this.following = on;
    if (on) this.jumpToNewest();
    this.notify();
  }

  jumpToNewest() {
    // The view leaves the linked line (or time): the address says so.
    const query = new URLSearchParams(location.search);
    query.delete("cursor");
    query.delete("since");
    history.replaceState(null, "", `${location.pathname}${query.size ? "?" + query : ""}`);
    if (!this.live) {
      // Not at the live end (paged back, or a permalink): read the tail again.
      this.open(this.source, this.params, { prefix: this.prefix });
      return;
    }
    this.following = true;
    this.box.scrollTop = this.box.scrollHeight;
    this.notify();
  }

  scrollToLine(index, center) {
    const top = index * LINE_HEIGHT + (this.atBeginning ? LINE_HEIGHT : 0);
    this.following = false;
    this.box.scrollTop = center ? top - this.box.clientHeight / 2 : top;
    this.render();
  }

  // Search over the loaded lines (case-insensitive), with a current match. On a server-side
  // search (grep= in the reads) the matches are the lines the API marks as matches, and the
  // marks are where the pattern hits.
  search(query) {
    this.query = query.toLowerCase();
    this.pattern = this.params && this.params.get("grep") ? patternOf(this.params.get("grep")) : null;
    this.current = -1;
    this.refreshMatches();
    this.render();
    this.notify();
  }

  serverSearch() {
    return Boolean(this.params && this.params.get("grep"));
  }

  refreshMatches() {
    const currentLine = this.current >= 0 ? this.lines[this.matches[this.current]] : null;
    this.matches = [];
    if (this.serverSearch()) {
      this.lines.forEach((l, i) => l.match && this.matches.push(i));
    } else if (this.query) {
      this.lines.forEach((l, i) => l.msg.toLowerCase().includes(this.query) && this.matches.push(i));
    }
    this.current = currentLine ? this.matches.findIndex((i) => this.lines[i] === currentLine) : -1;
  }

  step(delta) {
    if (!this.matches.length) return;
    if (this.current < 0) {
      // First step: the match nearest the view's middle in that direction.
      const middle = (this.box.scrollTop + this.box.clientHeight / 2) / LINE_HEIGHT;
      const after = this.matches.findIndex((i) => i >= middle);
      this.current = delta > 0 ? (after < 0 ? 0 : after) : (after <= 0 ? this.matches.length - 1 : after - 1);
    } else {
      this.current = (this.current + delta + this.matches.length) % this.matches.length;
    }
    this.scrollToLine(this.matches[this.current], true);
    this.notify();
  }

  render() {
    const offset = this.atBeginning ? 1 : 0; // the "beginning of the log" row
    const total = this.lines.length + offset;
    this.spacer.style.height = `${total * LINE_HEIGHT}px`;
    const first = Math.max(0, Math.floor(this.box.scrollTop / LINE_HEIGHT) - OVERSCAN);
    const last = Math.min(total, Math.ceil((this.box.scrollTop + this.box.clientHeight) / LINE_HEIGHT) + OVERSCAN);
    this.rows.style.transform = `translateY(${first * LINE_HEIGHT}px)`;
    const currentIndex = this.current >= 0 ? this.matches[this.current] : -1;
    const rows = [];
    for (let i = first; i < last; i++) {
      if (offset && i === 0) {
        rows.push(el("div", { className: "line begin", text: "— beginning of the log —" }));
        continue;
      }
      rows.push(this.row(this.lines[i - offset], i - offset === currentIndex));
    }
    this.rows.replaceChildren(...rows);
    this.box.dataset.lines = String(this.lines.length);
    this.box.dataset.first = this.lines.length ? this.lines[0].id : "";
  }

  row(line, current) {
    const classes = ["line"];
    if (line.stderr) classes.push("stderr");
    if (line.level) classes.push(line.level);
    if (this.linked && line.id === this.linked) classes.push("linked");
    if (this.serverSearch()) classes.push(line.match ? "match" : "context");
    if (line.gap) classes.push("gap");
    const link = new URLSearchParams(location.search);
    link.set("cursor", line.id);
    // A line without a place (a merged search's before-context) has no link: its match has.
    const time = line.id
      ? el("a", { className: "ts", href: `?${link}`, title: "Link to this line" }, timeText(line.ts))
      : el("span", { className: "ts", title: "Context before a match: link the match" }, timeText(line.ts));
    const node = el("div", { className: classes.join(" "), dataset: { cursor: line.id } }, time);
    if (line.prefix) node.append(el("span", { className: `prefix ${line.prefix.colour}`, title: line.prefix.title }, line.prefix.label));
    if (this.serverSearch()) node.title = line.match ? "match" : "context";
    node.append(this.message(line, current));
    return node;
  }

  // The message as text, with <mark>s where the search hits (context lines have none).
  message(line, current) {
    const msg = line.msg;
    const span = el("span", { className: "msg" });
    const hits = this.serverSearch() ? (line.match ? regexHits(this.pattern, msg) : []) : substringHits(this.query, msg);
    let at = 0;
    for (const [start, end] of hits) {
      if (start > at) span.append(msg.slice(at, start));
      span.append(el("mark", { className: current ? "current" : null }, msg.slice(start, end)));
      at = end;
    }
    if (at < msg.length) span.append(msg.slice(at));
    return span;
  }

  notify() {
    this.onState({
      lines: this.lines.length,
      live: this.live,
      following: this.following,
      reconnecting: this.reconnecting,
      atBeginning: this.atBeginning,
      dropped: this.dropped,
      problem: this.problem,
      matches: this.matches.length,
      current: this.current,
      loading: this.loadingOlder || this.loadingNewer,
    });
  }

  units() {
    const found = new Map();
    for (const l of this.lines) if (l.unit) found.set(l.unit.join(":"), l.unit);
    return [...found.values()].sort((a, b) => a[1].localeCompare(b[1]));
  }
}
