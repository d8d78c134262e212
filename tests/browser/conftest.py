"""The browser layer: Debian's headless Chromium, driven by Selenium through
chromium-driver, against a real ``refract up`` (keys required, Gemini faked).

``scripts/ensure-services.sh`` installs ``chromium`` and ``chromium-driver``; Selenium is
pointed at those binaries, so it never tries to download a browser.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.support.fakes.gemini import FakeGemini
from tests.support.services import PostgresServer, RedisDb, RedisServer
from tests.support.stack import RefractStack

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    """A fake Gemini on 127.0.0.1 for the module; each answer takes a little time."""
    with FakeGemini() as fake:
        fake.latency_s = 0.5  # long enough to see features run on screen
        yield fake


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_gemini: FakeGemini,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> Iterator[RefractStack]:
    """``refract up`` with keys required and Gemini pointed at the fake."""
    with (
        postgres_server.fresh_database("refract_browser") as database_url,
        redis_server.fresh_database(RedisDb.STACK) as redis_url,
    ):
        workdir = tmp_path_factory.mktemp("browser-stack")
        env = {
            "REFRACT_DATABASE_URL": database_url,
            "REFRACT_REDIS_URL": redis_url,
            "REFRACT_AUTH": "required",
            "REFRACT_SECRET_KEY": "browser-test-secret",
            "REFRACT_MODEL_BACKEND": "gemini",
            "GEMINI_API_KEY": "test-key",
            "REFRACT_GEMINI_BASE_URL": fake_gemini.url,
            "REFRACT_MEDIA_DIR": str(workdir / "media"),
            "REFRACT_MODEL_TIMEOUT_S": "30",
            "REFRACT_MODEL_MAX_ATTEMPTS": "2",
            "REFRACT_MODEL_BACKOFF_BASE_S": "0.05",
            # Every job here makes its own calls (scripted hangs and failures): no reply
            # reused from an identical earlier job.
            "REFRACT_REPLY_CACHE_TTL_S": "0",
            "REFRACT_MODEL_BACKOFF_MAX_S": "0.1",
            "REFRACT_RECONCILE_INTERVAL_S": "1",
            "REFRACT_GEMINI_RPM": "0",
            "REFRACT_YOUTUBE_TRANSCRIPTS": "false",
            "REFRACT_FLOWER_URL": "http://127.0.0.1:5555/",
        }
        with RefractStack(env, workdir) as running:
            yield running


def make_key(stack: RefractStack, name: str, role: str) -> str:
    """``refract keys create`` against the stack's database; the new key's secret."""
    done = subprocess.run(
        [sys.executable, "-m", "launch.cli", "keys", "create", "--name", name, "--role", role],
        env=stack.env,
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def admin_key(stack: RefractStack) -> str:
    """An admin key, as a shift lead gets one."""
    return make_key(stack, "shift-lead", "admin")


@pytest.fixture(scope="module")
def booth(stack: RefractStack) -> Iterator[httpx.Client]:
    """A booth kiosk's client: a client key sending jobs to the stack."""
    secret = make_key(stack, "kiosk-1", "client")
    with stack.client(headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        f"none of {', '.join(names)} is installed: run scripts/ensure-services.sh "
        "(it installs Debian's chromium and chromium-driver)"
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with its own profile under the test's temporary folder."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary(*CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_binary(DRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
