"""The console in a real browser (Debian's headless Chromium through chromium-driver) against
a real `logway dev` cluster on this module's addresses: one cluster and one browser for the
whole module. The browser reaches the gateway through a TCP relay so a test can drop its
connections as a network would."""

from __future__ import annotations

import gzip
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from app.authz.route_table import TASK_APP_RID
from app.iam.client import IamClient
from tests.conftest import journald_available, new_namespace_name
from tests.console.support import (
    MASTER,
    DevRun,
    JournalWriter,
    Relay,
    browser_available,
    gateway_pid,
    new_browser,
    start_dev,
    stop_dev,
    task_fields,
    wait_for,
)

pytestmark = [
    pytest.mark.skipif(not journald_available(), reason="needs root and journald"),
    pytest.mark.skipif(not browser_available(), reason="needs chromium and chromium-driver"),
]

LINE_WITHIN = 1.0  # seconds from the journal to the page (issue 15 §4)
MAX_LINES = 10000  # logview.js MAX_LINES
XSS = (
    '<img src=x onerror="window.__xss=1">',
    "</script><script>window.__xss=2</script>",
    "<svg onload=window.__xss=3><circle r=1></svg>",
    '"><iframe src="javascript:window.__xss=4"></iframe>',
    '<a href="javascript:window.__xss=5">click</a>',
    "{{constructor.constructor('window.__xss=6')()}}",
    "<style>*{display:none}</style><b>bold?</b>",
    "&lt;escaped&gt; &amp; <!-- comment -->",
    "javascript:window.__xss=7",
    "\u202eRTL override <details open ontoggle=window.__xss=8>",
)
STORED_KEYS_JS = "return Object.keys(localStorage).filter(k => k !== 'logway-console-theme')"
PREFIXES_JS = (
    "return [...document.querySelectorAll('#rows .prefix')]"
    ".map(p => p.className + '|' + p.textContent)"
)
OFFSET_JS = (
    "const e = document.querySelector(`#rows [data-cursor='${arguments[0]}']`);"
    "const box = document.getElementById('log').getBoundingClientRect();"
    "return e ? e.getBoundingClientRect().top - box.top : null"
)
RESOURCES_JS = "return performance.getEntriesByType('resource').map(e => e.name)"
MARKS_JS = "return [...document.querySelectorAll('#rows mark')].map(m => m.textContent)"
HTML_ELEMENTS_JS = (
    "return document.querySelectorAll('#rows img, #rows svg, #rows iframe, #rows script,"
    " #rows style, #rows details, #rows b, #rows a:not(.ts)').length"
)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    run = start_dev(tmp_path_factory.mktemp("console") / "data", new_namespace_name())
    try:
        yield run
    finally:
        stop_dev(run)


@pytest.fixture(scope="module")
def relay(dev: DevRun) -> Iterator[Relay]:
    gateway = dev.manifest()["gateway_url"].removeprefix("http://")
    host, port = gateway.split(":")
    r = Relay(MASTER, (host, int(port)))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Any]:
    driver = new_browser(downloads)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def no_grant(dev: DevRun) -> tuple[str, str]:
    """A user the IAM knows, with no permission at all."""
    manifest = dev.manifest()
    token = manifest["identities"]["superuser"]["token"]
    uid, password = "nobody", "no-grant-password-1"
    r = httpx.put(
        f"{manifest['gateway_url']}/acs/api/v1/users/{uid}",
        json={"description": "no grants", "password": password},
        headers={"Authorization": f"token={token}"},
        timeout=30,
    )
    assert r.status_code in (201, 204), r.text
    return uid, password


class Console:
    """The page, as a test drives it."""

    def __init__(self, driver: Any, base: str) -> None:
        self.d = driver
        self.base = base

    def get(self, path: str) -> None:
        self.d.get(self.base + path)

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def by_id(self, name: str) -> Any:
        return self.d.find_element("id", name)

    def visible(self, name: str) -> bool:
        return bool(self.js("return !document.getElementById(arguments[0]).hidden", name))

    def sign_in(self, uid: str, password: str) -> None:
        self.get("/console/")
        wait_for(lambda: self.visible("signin") or self.visible("browse"), what="the page")
        if self.visible("browse"):
            self.sign_out()
        self.by_id("uid").clear()
        self.by_id("uid").send_keys(uid)
        self.by_id("password").send_keys(password)
        self.by_id("signin-submit").click()
        wait_for(lambda: self.by_id("who").text == f"signed in as {uid}", what=f"{uid} signed in")

    def sign_out(self) -> None:
        self.by_id("signout").click()
        wait_for(lambda: self.visible("signin"), what="the sign-in form")

    def rows(self) -> list[dict[str, Any]]:
        """The rendered log lines: cursor, text, classes."""
        rows: list[dict[str, Any]] = self.js(
            "return [...document.querySelectorAll('#rows .line[data-cursor]')].map(e =>"
            " ({cursor: e.dataset.cursor, text: e.querySelector('.msg').textContent,"
            "   line: e.textContent, cls: e.className, link: Boolean(e.querySelector('a.ts'))}))"
        )
        return rows

    def texts(self) -> list[str]:
        return [r["text"] for r in self.rows()]

    def status(self) -> str:
        text: str = self.by_id("status").text
        return text

    def stored(self) -> int:
        return int(self.js("return Number(document.getElementById('log').dataset.lines || 0)"))

    def open_view(self, path: str) -> None:
        self.get(path)
        wait_for(lambda: self.rows(), timeout=15, what=f"lines at {path}")

    def scroll_top(self) -> None:
        self.js("const b = document.getElementById('log'); b.scrollTop = 0;")

    def scroll_bottom(self) -> None:
        self.js("const b = document.getElementById('log'); b.scrollTop = b.scrollHeight;")

    def key(self, keys: str) -> None:
        self.by_id("log").send_keys(keys)

    def count(self) -> str:
        text: str = self.by_id("count").text
        return text

    def page_text(self) -> str:
        text: str = self.js("return document.body.innerText")
        return text


@pytest.fixture(scope="module")
def console(browser: Any, relay: Relay) -> Console:
    return Console(browser, relay.url)


@pytest.fixture(scope="module")
def admin(console: Console, dev: DevRun) -> Console:
    console.sign_in("admin", dev.manifest()["identities"]["superuser"]["password"])
    return console


def task_path(task: dict[str, Any]) -> str:
    return f"/console/tasks/{quote(task['id'], safe='')}"


# Signing in and browsing ----------------------------------------------------------------------


def test_the_superuser_signs_in_and_sees_every_node_app_role_and_task(
    admin: Console, dev: DevRun
) -> None:
    manifest = dev.manifest()
    admin.get("/console/")
    wait_for(lambda: admin.visible("browse"), what="the list")
    text = admin.page_text()
    for agent in manifest["agents"]:
        assert agent["id"] in text
    for task in manifest["tasks"]:
        assert task["name"] in text
    for app in ("/prod/web", "/dev/worker", "/dev/batch"):
        assert app in text
    links = admin.js("return [...document.querySelectorAll('#browse a')].map(a => a.pathname)")
    assert "/console/nodes/leader" in links
    assert "/console/roles/dev" in links
    # The cookie is HttpOnly, and nothing about the session is in storage.
    assert admin.js("return document.cookie") == ""
    assert admin.js(STORED_KEYS_JS) == []
    assert admin.js("return sessionStorage.length") == 0


def test_a_task_a_line_it_writes_appears_within_a_second(admin: Console, dev: DevRun) -> None:
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    assert admin.by_id("title").text == "Task worker.dev"
    assert all(("job done" in t or "warning" in t) for t in admin.texts())
    wait_for(lambda: "following" in admin.status(), what="the live tail")
    writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
    try:
        marker = f"console-marker-{time.monotonic_ns()}"
        sent = time.monotonic()
        writer.send(task_fields(task, marker))
        wait_for(lambda: marker in admin.texts(), timeout=5, what="the written line")
        assert time.monotonic() - sent < LINE_WITHIN
    finally:
        writer.close()
    # Every rendered line is one element with its journal cursor.
    assert all(r["cursor"].startswith("s=") for r in admin.rows())


def test_an_agent_journal_with_its_unit_picker(admin: Console, dev: DevRun) -> None:
    agent = dev.manifest()["agents"][0]["id"]
    admin.open_view(f"/console/nodes/{agent}")
    wait_for(lambda: any("status update round" in t for t in admin.texts()), what="the service")
    options = wait_for(
        lambda: (
            admin.js("return [...document.querySelectorAll('#unit option')].map(o => o.value)")
            if len(admin.js("return document.querySelectorAll('#unit option')")) > 1
            else None
        ),
        what="units in the picker",
    )
    assert "UNIT:dcos-mesos-slave.service" in options
    admin.js(
        "const s = document.getElementById('unit'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('change'))",
        "UNIT:dcos-mesos-slave.service",
    )
    wait_for(
        lambda: admin.texts() and all("status update round" in t for t in admin.texts()),
        what="only the unit's lines",
    )
    assert "unit=UNIT%3Adcos-mesos-slave.service" in admin.d.current_url


def test_an_app_merged_with_a_coloured_prefix_per_task(admin: Console, dev: DevRun) -> None:
    admin.open_view("/console/apps/prod/web")
    webs = [t for t in dev.manifest()["tasks"] if t["app_id"] == "/prod/web"]

    def prefixes() -> set[str] | None:
        found = set(admin.js(PREFIXES_JS))
        return found if len({p.split("|")[1] for p in found}) == len(webs) else None

    found = wait_for(prefixes, timeout=15, what="a prefix per instance")
    labels = {p.split("|")[1] for p in found}
    assert all(label.startswith("web.prod·") for label in labels)
    assert all(p.split("|")[0].startswith("prefix c") for p in found)
    assert all(r["cursor"].startswith("m2.") for r in admin.rows())
    assert admin.visible("download")  # the merged range, gzipped
    assert (
        admin.by_id("download")
        .get_attribute("href")
        .split("?")[0]
        .endswith("/system/v1/logs/v1/app/prod/web/range/download")
    )


# Reading ---------------------------------------------------------------------------------


def test_scrolling_up_pages_back_to_the_beginning_keeping_the_position(
    admin: Console, dev: DevRun
) -> None:
    loader = dev.task("/dev/batch", 0)
    writer = JournalWriter(dev.agent_namespace(loader["agent_id"]))
    try:
        for i in range(1000):
            writer.send(task_fields(loader, f"history line {i:04d}"))
    finally:
        writer.close()
    admin.get(task_path(loader))
    wait_for(
        lambda: "history line" in " ".join(admin.texts()) or admin.stored() >= 400,
        timeout=15,
        what="the tail",
    )
    wait_for(lambda: admin.stored() >= 400, what="a first page")
    assert "beginning of the log" not in admin.status()
    pages = 0
    while "beginning of the log" not in admin.status():
        top = admin.js("return document.getElementById('log').dataset.first")
        before = admin.stored()
        admin.scroll_top()
        wait_for(
            lambda before=before: admin.stored() > before or "beginning" in admin.status(),
            what="an older page",
        )
        pages += 1
        # The line that was on screen is still rendered: the view kept its place.
        if admin.stored() > before:
            kept = admin.js(OFFSET_JS, top)
            height = admin.js("return document.getElementById('log').clientHeight")
            assert kept is not None, pages
            assert 0 <= kept < height, (pages, kept)
        assert pages < 20
    assert pages >= 2
    admin.scroll_top()
    wait_for(
        lambda: (
            admin.js("return document.querySelector('#rows .line').textContent")
            == "— beginning of the log —"
        ),
        what="the beginning mark at the top",
    )
    assert admin.stored() >= 1000
    # Down from the beginning, the history comes in the order it was written.
    admin.js("document.getElementById('log').scrollTop = arguments[0]", 0)
    seen: list[str] = []
    for _ in range(200):
        seen += [t for t in admin.texts() if t.startswith("history line") and t not in seen]
        if len(seen) == 1000:
            break
        admin.js("const b = document.getElementById('log'); b.scrollTop += b.clientHeight")
        time.sleep(0.05)  # the scroll event renders on the next frame
    assert seen == [f"history line {i:04d}" for i in range(1000)]


def test_switching_stream_and_filtering(admin: Console, dev: DevRun) -> None:
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    admin.js("document.querySelector('#streams [data-stream=\"STDERR\"]').click()")
    wait_for(lambda: admin.texts() and all("warning" in t for t in admin.texts()), what="stderr")
    assert "stream=STDERR" in admin.d.current_url
    assert all("stderr" in r["cls"] for r in admin.rows())
    admin.js("document.querySelector('#streams [data-stream=\"STDOUT\"]').click()")
    wait_for(
        lambda: admin.texts() and not any("warning" in t for t in admin.texts()), what="stdout"
    )
    assert not any("stderr" in r["cls"] for r in admin.rows())
    admin.js("document.querySelector('#streams [data-stream=\"\"]').click()")
    wait_for(
        lambda: (
            any("warning" in t for t in admin.texts())
            and any("job done" in t for t in admin.texts())
        ),
        what="both streams",
    )
    # A field filter, as the API takes it.
    admin.by_id("filters").clear()
    admin.by_id("filters").send_keys("STREAM:STDERR")
    admin.js("document.querySelector('#filter-form button[type=submit]').click()")
    wait_for(lambda: admin.texts() and all("warning" in t for t in admin.texts()), what="filter")
    assert "filter=STREAM%3ASTDERR" in admin.d.current_url
    # The server-side search goes to the API as `grep=`, as the page's own URL gives it.
    admin.get(task_path(task) + "?grep=job")
    wait_for(
        lambda: [n for n in admin.js(RESOURCES_JS) if "/range/" in n and "grep=job" in n],
        what="a read with grep=",
    )
    assert admin.by_id("server-search").is_selected()
    assert admin.by_id("search").get_attribute("value") == "job"


def test_since_starts_at_that_time(admin: Console, dev: DevRun) -> None:
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    rows = admin.rows()
    middle = rows[len(rows) // 2]
    since_us = int(middle["cursor"].split(";t=")[1].split(";")[0], 16)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since_us // 1_000_000)) + "Z"
    admin.open_view(task_path(task) + f"?since={since}")
    first = admin.rows()[0]
    first_us = int(first["cursor"].split(";t=")[1].split(";")[0], 16)
    assert first_us >= (since_us // 1_000_000) * 1_000_000
    assert first_us < since_us + 2_000_000


def test_search_highlights_and_steps_through_matches_with_keys(admin: Console, dev: DevRun) -> None:
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    admin.key("f")  # stop following, so the matches stay where they are
    wait_for(lambda: admin.by_id("follow").get_attribute("aria-pressed") == "false", what="paused")
    admin.key("/")
    assert admin.js("return document.activeElement.id") == "search"
    admin.by_id("search").send_keys("warning")
    count = wait_for(lambda: " of " in admin.count() and admin.count(), what="count")
    total = int(count.split(" of ")[1])
    assert total >= 2
    marks = admin.js("return [...document.querySelectorAll('#rows mark')].map(m => m.textContent)")
    assert set(marks) == {"warning"}
    admin.by_id("log").click()
    admin.key("n")
    first = wait_for(lambda: admin.count()[:1].isdigit() and admin.count().split(" of ")[0])
    current = admin.js("return document.querySelector('#rows mark.current').textContent")
    assert current == "warning"
    admin.key("n")
    second = admin.count().split(" of ")[0]
    assert int(second) == int(first) % total + 1
    admin.key("N")
    assert admin.count().split(" of ")[0] == first
    # End goes back to the newest and follows again.
    admin.key("\ue010")  # End
    wait_for(lambda: admin.by_id("follow").get_attribute("aria-pressed") == "true", what="follow")
    admin.by_id("search").clear()
    admin.js("document.getElementById('search').dispatchEvent(new Event('input'))")


def marks(page: Console) -> dict[str, set[str]]:
    """Each rendered line's search classes: match or context, and gap."""
    return {r["text"]: set(r["cls"].split()) & {"match", "context", "gap"} for r in page.rows()}


def server_search(page: Console, pattern: str, context: int | None) -> None:
    """Runs a server-side search from the toolbar: the pattern, the context, the "server" box."""
    page.by_id("search").clear()
    page.by_id("search").send_keys(pattern)
    if context is not None:
        page.by_id("context").clear()
        page.by_id("context").send_keys(str(context))
    if not page.by_id("server-search").is_selected():
        page.by_id("server-search").click()
    else:
        page.js("document.getElementById('search-form').requestSubmit()")


def test_a_server_side_search_shows_the_matches_and_their_context(
    admin: Console, dev: DevRun
) -> None:
    task = dev.task("/dev/batch", 1)  # the pod's reporter: no other test reads its lines
    tag = f"ctx{time.monotonic_ns()}"
    needles = (2, 6, 10)

    def line(i: int) -> str:
        # Line 3 is context: HTML in it stays text.
        return f"{tag} line {i} " + (
            "needle" if i in needles else "<b>hay</b>" if i == 3 else "hay"
        )

    writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
    try:
        for i in range(9):  # in one burst: the task's own lines (one a second) stay out of it
            writer.send(task_fields(task, line(i)))
        admin.open_view(task_path(task))
        server_search(admin, rf"{tag} line \d+ needle", 1)
        expected = [line(i) for i in (1, 2, 3, 5, 6, 7)]
        wait_for(lambda: admin.texts() == expected, timeout=15, what="the matches in context")
        query = parse_qs(urlsplit(admin.d.current_url).query)
        assert query["grep"] == [rf"{tag} line \d+ needle"]
        assert query["context"] == ["1"]
        # Context marked as context, and a new group (a gap) at line 5: line 4 is in none.
        assert marks(admin) == {
            line(1): {"context"},
            line(2): {"match"},
            line(3): {"context"},
            line(5): {"context", "gap"},
            line(6): {"match"},
            line(7): {"context"},
        }
        assert admin.js(HTML_ELEMENTS_JS) == 0
        colour = (
            "return getComputedStyle(document.querySelector(`#rows .line.${arguments[0]} .msg`))"
            ".color"
        )
        assert admin.js(colour, "context") != admin.js(colour, "match")
        # The marks are on the matches only, the whole of what the pattern matched.
        assert admin.js(MARKS_JS) == [line(2), line(6)]
        # The live tail follows the search: a new match comes with its context.
        wait_for(lambda: "following" in admin.status(), what="the live tail")
        for i in (9, 10, 11):
            writer.send(task_fields(task, line(i)))
        expected += [line(i) for i in (9, 10, 11)]
        wait_for(lambda: admin.texts() == expected, timeout=10, what="the live match in context")
        # (No `gap` asserted on line 9: the API marks gaps within one response, and the
        # stream's first line is where a response starts.)
        live = {k: v - {"gap"} for k, v in marks(admin).items() if k in expected[-3:]}
        assert live == {line(9): {"context"}, line(10): {"match"}, line(11): {"context"}}
    finally:
        writer.close()
    # n and N step over the matches only.
    admin.key("f")
    wait_for(lambda: admin.by_id("follow").get_attribute("aria-pressed") == "false", what="paused")
    assert admin.count() == "\u2013 of 3"  # no current match yet
    admin.by_id("log").click()
    seen = []
    for _ in range(3):
        admin.key("n")
        seen.append(admin.js("return document.querySelector('#rows mark.current').textContent"))
    assert sorted(seen) == sorted(line(i) for i in needles)
    admin.key("N")
    assert admin.js("return document.querySelector('#rows mark.current').textContent") == seen[1]


def test_download_gives_the_apis_gzip(admin: Console, dev: DevRun, downloads: Path) -> None:
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task) + "?stream=STDOUT")
    href = admin.by_id("download").get_attribute("href")
    assert "/range/framework/" in href
    assert href.split("?")[0].endswith("/download")
    admin.by_id("download").click()
    path = wait_for(lambda: next(iter(downloads.glob("*.log.gz")), None), timeout=15)
    wait_for(lambda: not list(downloads.glob("*.crdownload")), what="the download to finish")
    body = gzip.decompress(path.read_bytes()).decode()
    lines = body.splitlines()
    assert lines
    assert all("job done" in ln or "console-marker" in ln for ln in lines)
    assert path.name.startswith("task-")
    assert "stdout" in path.name


@pytest.mark.parametrize("where", ["task", "app"])
def test_a_permalink_shows_the_line_highlighted_in_context(
    admin: Console, dev: DevRun, where: str
) -> None:
    path = task_path(dev.task("/dev/worker")) if where == "task" else "/console/roles/dev"
    admin.open_view(path)
    rows = admin.rows()
    chosen = rows[len(rows) // 2]
    admin.get(f"{path}?cursor={quote(chosen['cursor'], safe='')}")
    linked = wait_for(
        lambda: admin.js(
            "const e = document.querySelector('#rows .line.linked');"
            "return e && {cursor: e.dataset.cursor, text: e.querySelector('.msg').textContent}"
        ),
        timeout=15,
        what="the linked line",
    )
    assert linked == {"cursor": chosen["cursor"], "text": chosen["text"]}
    texts = admin.texts()
    at = texts.index(chosen["text"])
    assert 0 < at < len(texts) - 1  # lines before and after it
    # The line's time is its permalink.
    href = admin.js("return document.querySelector('#rows .line.linked a.ts').getAttribute('href')")
    assert httpx.URL("http://x/" + href).params.get("cursor") == chosen["cursor"]
    # From a permalink, End goes back to the live tail and leaves the link.
    admin.key("\ue010")
    wait_for(lambda: "following" in admin.status(), what="the live tail again")
    assert "cursor=" not in admin.d.current_url


# Security ----------------------------------------------------------------------------------


def test_hostile_lines_are_text_and_run_nothing(admin: Console, dev: DevRun) -> None:
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
    try:
        for payload in XSS:
            writer.send(task_fields(task, payload))
    finally:
        writer.close()
    wait_for(lambda: XSS[-1] in admin.texts(), timeout=5, what="the payloads")
    texts = admin.texts()
    for payload in XSS:
        assert payload in texts
    assert admin.js("return window.__xss === undefined")
    assert admin.js(HTML_ELEMENTS_JS) == 0
    # Search highlighting inside a payload is text as well.
    admin.by_id("search").clear()
    admin.by_id("search").send_keys("<img")
    wait_for(lambda: admin.js(MARKS_JS), what="marks")
    assert set(admin.js(MARKS_JS)) == {"<img"}
    assert admin.js("return window.__xss === undefined")
    # The same lines in a merged view (prefixes, titles).
    admin.open_view("/console/roles/dev")
    wait_for(lambda: XSS[-1] in admin.texts() or admin.stored() > 0, what="the role")
    admin.by_id("search").clear()
    admin.js("document.getElementById('search').dispatchEvent(new Event('input'))")
    assert admin.js("return window.__xss === undefined")
    assert admin.js(HTML_ELEMENTS_JS) == 0
    logs = [e for e in admin.d.get_log("browser") if "Content Security Policy" in e["message"]]
    assert logs == []  # nothing even tried to run inline


def test_a_user_sees_only_what_their_grants_allow(
    console: Console, dev: DevRun, no_grant: tuple[str, str]
) -> None:
    manifest = dev.manifest()
    prod = [t for t in manifest["tasks"] if t["app_id"] == "/prod/web"]
    dev_tasks = [t for t in manifest["tasks"] if t["app_id"].startswith("/dev/")]
    console.sign_in("dev", manifest["identities"]["dev"]["password"])
    try:
        text = console.page_text()
        for task in dev_tasks:
            assert task["name"] in text
        for foreign in [*(t["id"] for t in prod), "/prod/web", "leader", "Nodes", "NODES"]:
            assert foreign not in text
        for agent in manifest["agents"]:
            assert agent["id"] not in console.js(
                "return [...document.querySelectorAll('#browse a')].map(a => a.pathname).join(' ')"
            )
        # Typed URLs show nothing foreign either.
        foreign_agent = manifest["agents"][0]["id"]
        for path in (
            task_path(prod[0]),
            "/console/apps/prod/web",
            "/console/roles/prod",
            f"/console/nodes/{foreign_agent}",
            "/console/nodes/leader",
        ):
            console.get(path)
            wait_for(lambda: console.visible("problem"), what=f"a refusal at {path}")
            time.sleep(0.3)  # nothing may arrive later either
            assert console.rows() == [], path
        # The role view holds the dev tasks only.
        console.open_view("/console/roles/dev")
        texts = console.texts()
        assert texts
        assert not any("/prod/web" in t or "firehose" in t for t in texts)
    finally:
        console.sign_out()
    uid, password = no_grant
    console.sign_in(uid, password)
    try:
        text = console.page_text()
        assert "Nothing you may read yet." in text
        listed = console.js("return document.getElementById('browse-lists').innerText")
        assert listed.strip() == "Nothing you may read yet."
        for task in manifest["tasks"]:
            assert task["id"] not in text
        console.get(task_path(dev_tasks[0]))
        wait_for(lambda: console.visible("problem"), what="a refusal")
        assert console.rows() == []
    finally:
        console.sign_out()


@pytest.fixture(scope="module")
def worker_reader(dev: DevRun) -> tuple[str, str]:
    """A user who may read the /dev/worker app's tasks only (not /dev/batch's)."""
    manifest = dev.manifest()
    uid, password = "worker-reader", "worker-reader-password-1"
    with httpx.Client(timeout=30) as http:
        iam = IamClient(
            http, manifest["gateway_url"], token=manifest["identities"]["superuser"]["token"]
        )
        iam.put_user(uid, {"description": "reads /dev/worker", "password": password})
        iam.grant(f"{TASK_APP_RID}:/dev/worker", uid, "read")
    return uid, password


def test_a_merged_server_side_search_with_context_shows_the_readable_tasks_only(
    console: Console, dev: DevRun, worker_reader: tuple[str, str]
) -> None:
    worker, batch = dev.task("/dev/worker"), dev.task("/dev/batch", 0)
    tag = f"merged{time.monotonic_ns()}"
    needles = (1, 5, 8, 12)

    def line(task: dict[str, Any], i: int) -> str:
        return f"{tag} {task['app_id']} {i} {'needle' if i in needles else 'hay'}"

    def write(lines: range) -> None:
        for task in (worker, batch):
            writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
            try:
                for i in lines:  # in one burst: the task's own lines stay out of it
                    writer.send(task_fields(task, line(task, i)))
            finally:
                writer.close()

    def tagged() -> list[dict[str, Any]]:
        return [r for r in console.rows() if r["text"].startswith(tag)]

    def placed(rows: list[dict[str, Any]], before_context: set[str]) -> None:
        # In a follow, a match's before-context comes without an event id (it may come behind
        # later lines of other tasks): no composite cursor, so no data-cursor and no link (no
        # place to resume, page or link from). A range sends it in order, with its own.
        for r in rows:
            if r["text"] in before_context:
                assert (r["cursor"], r["link"]) == ("", False), r
            else:
                assert r["cursor"].startswith("m2."), r
                assert r["link"], r

    write(range(7))
    console.sign_in(*worker_reader)
    try:
        # The app /dev holds both apps' tasks; this user may read /dev/worker's only.
        console.open_view("/console/apps/dev")
        assert console.visible("context-box")
        server_search(console, f"{tag} .* needle", 1)
        expected = [line(worker, i) for i in (0, 1, 2, 4, 5, 6)]
        wait_for(lambda: console.texts() == expected, timeout=15, what="the worker's matches")
        assert marks(console) == {
            line(worker, 0): {"context"},
            line(worker, 1): {"match"},
            line(worker, 2): {"context"},
            line(worker, 4): {"context", "gap"},
            line(worker, 5): {"match"},
            line(worker, 6): {"context"},
        }
        placed(console.rows(), set())
        assert console.js(MARKS_JS) == [line(worker, 1), line(worker, 5)]
        assert parse_qs(urlsplit(console.d.current_url).query)["context"] == ["1"]
        reads = [n for n in console.js(RESOURCES_JS) if "/app/dev/range/" in n and "grep=" in n]
        assert reads
        assert all("context=1" in n for n in reads), reads
        # The live tail follows the search with its context; a before-context line that
        # comes after others in the stream gets no place either.
        wait_for(lambda: "following" in console.status(), what="the live tail")
        write(range(7, 14))
        expected += [line(worker, i) for i in (7, 8, 9, 11, 12, 13)]
        wait_for(lambda: console.texts() == expected, timeout=10, what="the live matches")
        live = {k: v - {"gap"} for k, v in marks(console).items() if k in expected[-6:]}
        assert live == {
            line(worker, 7): {"context"},
            line(worker, 8): {"match"},
            line(worker, 9): {"context"},
            line(worker, 11): {"context"},
            line(worker, 12): {"match"},
            line(worker, 13): {"context"},
        }
        placed(console.rows(), {line(worker, 7), line(worker, 11)})
        # A typed address with context=2: the worker's tagged lines all, in their order (its
        # own lines between them may come as context too), none of /dev/batch's.
        console.get(f"/console/apps/dev?grep={quote(tag + ' .* needle')}&context=2")
        everything = [line(worker, i) for i in range(14)]
        wait_for(
            lambda: [r["text"] for r in tagged()] == everything,
            timeout=15,
            what="the matches with 2 lines of context",
        )
        assert console.js("return document.getElementById('context').value") == "2"
        assert not console.visible("problem")
        assert not [t for t in console.texts() if "/dev/batch" in t]
        assert {r["text"] for r in tagged() if "match" in r["cls"].split()} == {
            line(worker, i) for i in needles
        }
        reads = [n for n in console.js(RESOURCES_JS) if "/app/dev/range/" in n]
        assert reads
        assert all("context=2" in n for n in reads), reads
    finally:
        console.sign_out()


def test_a_merged_download_holds_the_readable_tasks_lines_only(
    console: Console, dev: DevRun, worker_reader: tuple[str, str], downloads: Path
) -> None:
    worker, batch = dev.task("/dev/worker"), dev.task("/dev/batch", 0)
    tag = f"download{time.monotonic_ns()}"
    for task in (worker, batch):
        writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
        try:
            for i in range(3):
                writer.send(task_fields(task, f"{tag} {task['app_id']} {i}"))
        finally:
            writer.close()
    console.sign_in(*worker_reader)
    try:
        console.open_view(f"/console/apps/dev?grep={quote(tag)}")
        expected = [f"{tag} /dev/worker {i}" for i in range(3)]
        wait_for(lambda: console.texts() == expected, timeout=15, what="the worker's lines")
        href = console.by_id("download").get_attribute("href")
        assert href.split("?")[0].endswith("/system/v1/logs/v1/app/dev/range/download")
        assert "grep=" in href
        console.by_id("download").click()
        path = wait_for(lambda: next(iter(downloads.glob("app-dev*.log.gz")), None), timeout=15)
        wait_for(lambda: not list(downloads.glob("*.crdownload")), what="the download to finish")
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        assert [line.split(": ", 1)[1] for line in lines] == expected  # text: time, message
    finally:
        console.sign_out()


def test_signing_out_ends_the_session(console: Console, dev: DevRun) -> None:
    console.sign_in("admin", dev.manifest()["identities"]["superuser"]["password"])
    console.sign_out()
    console.get(task_path(dev.task("/dev/worker")))
    wait_for(lambda: console.visible("signin"), what="the sign-in form")
    assert console.rows() == []


# Live tail under stress ------------------------------------------------------------------------


def test_the_live_tail_resumes_after_a_network_drop_marked_while_reconnecting(
    admin: Console, console: Console, dev: DevRun, relay: Relay
) -> None:
    admin.sign_in("admin", dev.manifest()["identities"]["superuser"]["password"])
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    wait_for(lambda: "following" in admin.status(), what="the live tail")
    writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
    try:
        relay.cut()
        wait_for(lambda: admin.visible("reconnecting"), timeout=10, what="the reconnecting mark")
        gap = [f"written while away {i}" for i in range(5)]
        for line in gap:
            writer.send(task_fields(task, line))
        relay.restore()
        wait_for(lambda: not admin.visible("reconnecting"), timeout=20, what="reconnected")
        wait_for(lambda: gap[-1] in admin.texts(), timeout=10, what="the lines from the gap")
        texts = admin.texts()
        for line in gap:
            assert texts.count(line) == 1  # resumed from the last event id: no loss, no repeat
    finally:
        relay.restore()
        writer.close()


def test_the_live_tail_resumes_after_the_gateway_restarts(admin: Console, dev: DevRun) -> None:
    """The gateway process itself dies (SIGKILL) and `logway dev` starts it again: the
    console marks the stream reconnecting, then resumes from its last event id, through
    the new process, with no line lost or repeated."""
    admin.sign_in("admin", dev.manifest()["identities"]["superuser"]["password"])
    task = dev.task("/dev/worker")
    admin.open_view(task_path(task))
    wait_for(lambda: "following" in admin.status(), what="the live tail")
    writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
    tag = f"restart{time.monotonic_ns()}"
    try:
        writer.send(task_fields(task, f"{tag} before"))
        wait_for(lambda: f"{tag} before" in admin.texts(), timeout=10, what="a line before")
        old = gateway_pid(dev)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: admin.visible("reconnecting"), timeout=10, what="the reconnecting mark")
        away = [f"{tag} while the gateway was down {i}" for i in range(5)]
        for line in away:
            writer.send(task_fields(task, line))
        wait_for(lambda: gateway_pid(dev) != old, timeout=60, what="a new gateway process")
        wait_for(lambda: not admin.visible("reconnecting"), timeout=60, what="reconnected")
        writer.send(task_fields(task, f"{tag} after"))
        wait_for(lambda: f"{tag} after" in admin.texts(), timeout=15, what="a line after")
        texts = [t for t in admin.texts() if t.startswith(tag)]
        assert texts == [f"{tag} before", *away, f"{tag} after"]  # none lost, none repeated
    finally:
        writer.close()


def test_a_2000_lines_per_second_follow_keeps_the_dom_bounded(admin: Console, dev: DevRun) -> None:
    task = dev.task("/prod/web", 1)
    admin.open_view(task_path(task))
    wait_for(lambda: "following" in admin.status(), what="the live tail")
    writer = JournalWriter(dev.agent_namespace(task["agent_id"]))
    rate, seconds = 2000, 6  # 12,000 lines: more than the page keeps
    try:
        start = time.monotonic()
        for i in range(rate * seconds):
            writer.send(task_fields(task, f"firehose {i:06d}"))
            if i % 200 == 199:
                ahead = (i + 1) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        last = f"firehose {rate * seconds - 1:06d}"
        wait_for(lambda: last in admin.texts(), timeout=20, what="the last line at the bottom")
    finally:
        writer.close()
    assert admin.stored() == MAX_LINES
    rendered = admin.js("return document.querySelectorAll('#rows .line').length")
    visible = admin.js("return Math.ceil(document.getElementById('log').clientHeight / 18)")
    assert rendered <= visible + 2 * 20 + 1  # the visible rows and the overscan, no more
    assert admin.js("return document.querySelectorAll('*').length") < 1000
    assert "oldest dropped" in admin.status()
