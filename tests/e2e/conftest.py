"""Browser tests: a real Chromium (Debian's, not Playwright's download) against the app served
by a live werkzeug server on 127.0.0.1. Chromium resolves *.localhost to 127.0.0.1, so
http://acme.localhost:PORT/ reaches the server as tenant "acme" without any DNS set-up.

Without Chromium every test here is skipped with the reason; with REQUIRE_E2E=1 (CI) it fails.
PORTICO_CHROMIUM=/path/to/chromium points at another binary (a missing path counts as absent).
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.support import PLATFORM

from tests.e2e.viewports import DESKTOP, PHONE  # noqa: F401  (the screenshot fixture's sizes)

E2E_DIR = Path(__file__).resolve().parent
SCREENSHOT_DIR = E2E_DIR.parents[1] / "test-artifacts" / "screenshots"
MISSING_REASON = "Chromium not found: apt-get install chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def find_chromium() -> str | None:
    """The Chromium binary to drive, or None. PORTICO_CHROMIUM overrides the lookup."""
    override = os.environ.get("PORTICO_CHROMIUM")
    if override:
        return override if os.path.isfile(override) and os.access(override, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _is_e2e(item) -> bool:
    return E2E_DIR in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config, items):
    # Called with every collected item, not only this folder's: mark just ours.
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Skip (or, with REQUIRE_E2E=1, fail) when there is no Chromium to drive."""
    path = find_chromium()
    if path is None:
        if os.environ.get("REQUIRE_E2E") == "1":
            pytest.fail(f"{MISSING_REASON} (REQUIRE_E2E=1)", pytrace=False)
        pytest.skip(MISSING_REASON)
    return path


@pytest.fixture(scope="session", autouse=True)
def _require_chromium(chromium_path):
    """Autouse for this folder, so the check comes before any browser, server or database."""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, chromium_path):
    """pytest-playwright has no option for the executable: point it at the system Chromium."""
    return {**browser_type_launch_args, "executable_path": chromium_path, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "en-GB"}


@pytest.fixture
def context(new_context):
    """The default page is a desktop browser; a test wanting a phone calls new_context itself."""
    return new_context(viewport=DESKTOP)


class LiveServer:
    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, slug: str | None = None, path: str = "/") -> str:
        """http://<slug>.localhost:PORT<path>, or the platform's address with slug=None."""
        host = f"{slug}.{PLATFORM}" if slug else PLATFORM
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def live_server(app, _require_chromium):
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@pytest.fixture
def screenshot(request):
    """screenshot(page, "step") saves the whole page at desktop and at phone width:
    test-artifacts/screenshots/<test>--<step>--desktop.png and ...--phone.png.
    With sizes=("phone",) (a context already at phone size) it saves just that one."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    test_name = _slug(request.node.name)

    def take(page, step: str, sizes=("desktop", "phone")) -> list[Path]:
        saved = []
        original = page.viewport_size
        for size in sizes:
            viewport = DESKTOP if size == "desktop" else PHONE
            if page.viewport_size != viewport:
                page.set_viewport_size(viewport)
            path = SCREENSHOT_DIR / f"{test_name}--{_slug(step)}--{size}.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            saved.append(path)
        if original and page.viewport_size != original:
            page.set_viewport_size(original)
        return saved

    return take
