"""The console over HTTP against a real `logway gateway` process (no cluster behind it): the
page and its files with their security and cache headers, sign-in and sign-out through the
cookie, and cross-site state changes refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from app.console.routes import CSP
from tests.support.gateway import gateway

HOST = "127.0.0.113"
PASSWORD = "console-test-password"
SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
STATIC = Path(__file__).resolve().parents[2] / "app" / "console" / "static"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with gateway(tmp_path_factory.mktemp("gw"), password=PASSWORD, host=HOST) as base:
        yield base


@pytest.fixture
def client(gw: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw, timeout=30) as c:
        yield c


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP
    assert "'unsafe-inline'" not in CSP
    assert "eval" not in CSP
    assert "frame-ancestors 'none'" in CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/nodes/leader",
        "/console/tasks/prod_web.1234",
        "/console/apps/prod/web",
        "/console/roles/dev?cursor=s%3D1&filter=STREAM:STDERR",
    ],
)
def test_every_console_url_is_the_page_uncached(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert_secured(response)
    assert "<title>Logway console</title>" in response.text


def test_console_without_slash_redirects(client: httpx.Client) -> None:
    response = client.get("/console")
    assert response.status_code == 301
    assert response.headers["location"] == "/console/"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.assets: list[str] = []
        self.inline_handlers: list[str] = []
        self.in_script = False
        self.script_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.inline_handlers += [k for k in found if k.startswith("on") or k == "style"]
        if tag == "script":
            self.scripts.append(found)
            self.in_script = True
        for key in ("src", "href"):
            value = found.get(key)
            if value and value.startswith("/console/static/"):
                self.assets.append(value)

    def handle_endtag(self, tag: str) -> None:
        self.in_script = self.in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.script_text += data


def test_the_page_has_no_inline_script_and_hashed_long_cached_assets(
    client: httpx.Client,
) -> None:
    page = _Page()
    page.feed(client.get("/console/").text)
    assert page.scripts == [{"type": "module", "src": page.scripts[0]["src"]}]
    assert page.script_text.strip() == ""
    assert page.inline_handlers == []
    assert page.assets
    digests = {re.match(r"/console/static/([0-9a-f]{16})/", a)[1] for a in page.assets}  # type: ignore[index]
    assert len(digests) == 1
    for asset in page.assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert_secured(response)
    main = page.scripts[0]["src"]
    assert main
    assert client.get(main).headers["content-type"] == "text/javascript; charset=utf-8"
    # The modules import each other relatively: under the same digest.
    for name in ("api.js", "logview.js", "source.js", "dom.js"):
        assert client.get(main.replace("main.js", name)).status_code == 200
    # Another release's digest, or a file that is not there: 404, never the page.
    assert client.get(main.replace(digests.pop(), "0" * 16)).status_code == 404
    assert client.get(main.replace("main.js", "nope.js")).status_code == 404
    assert client.get("/console/api/nope").status_code == 404


def test_the_scripts_never_parse_data_as_html() -> None:
    """Every string reaches the DOM through textContent or setAttribute (dom.js)."""
    for path in STATIC.glob("*.js"):
        code = path.read_text()
        for sink in SINKS:
            assert sink not in code, (path.name, sink)


def test_sign_in_sets_the_cookie_and_sign_out_clears_it(client: httpx.Client, gw: str) -> None:
    assert client.get("/console/api/catalog").status_code == 401
    response = client.post(
        "/acs/api/v1/auth/login",
        json={"uid": "admin", "password": PASSWORD},
        headers={"Origin": gw, "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dcos-acs-auth-cookie=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure under TLS
    # Signed in: the catalog needs the cluster state, which this gateway has none of.
    assert client.get("/console/api/catalog").status_code == 503
    out = client.post("/console/api/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert out.status_code == 204
    assert out.headers["set-cookie"].startswith('dcos-acs-auth-cookie="";')
    assert_secured(out)
    assert client.get("/console/api/catalog").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}, {"Origin": "null"}],
)
def test_cross_site_sign_in_and_out_are_refused(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    login = client.post(
        "/acs/api/v1/auth/login", json={"uid": "admin", "password": PASSWORD}, headers=headers
    )
    assert login.status_code == 403
    assert "set-cookie" not in login.headers
    assert "cross-origin" in login.text
    assert client.post("/console/api/logout", headers=headers).status_code == 403
    # The form a hostile page would post (text/plain, no preflight) is refused the same way.
    form = client.post(
        "/acs/api/v1/auth/login",
        content=b'{"uid":"admin","password":"x"}',
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert form.status_code == 403
