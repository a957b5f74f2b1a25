"""Fixtures of the dashboard's browser tests: Debian's Chromium, headless, driven by Selenium over chromedriver.

ONE browser per test module (cookies cleared between sign-ins) against the module's ONE `paper-ledger serve`
(``tests/service_support.py``). After each test the page is saved as a screenshot in the test's tmp dir and the
browser's console must hold no error. Nothing sleeps: waits are WebDriverWait on a DOM condition.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service_support import Server

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1100",
)
WAIT_SECONDS = 20
# Read at import: the autouse fixture of conftest.py removes LEDGER_* variables before each test runs.
WRITE_SCREENSHOT = os.environ.get("LEDGER_WRITE_SCREENSHOT") == "1"
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium with a fresh profile; downloads go to ``browser.download_dir``."""
    found = _chromium()
    if found is None:
        message = "no chromium/chromedriver (Debian: apt-get install chromium chromium-driver): browser tests not run"
        if os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1":  # CI installs the browser: missing it is a failure
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tempfile.mkdtemp(prefix="ledger-chromium-")
    downloads = tempfile.mkdtemp(prefix="ledger-downloads-")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": downloads, "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    driver.download_dir = Path(downloads)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)


def console_errors(driver: Any, expected: tuple[str, ...] = ()) -> list[str]:
    """The browser console's errors since the last read, less those naming one of ``expected`` (e.g. the URL
    of a page the test expects to answer 404)."""
    entries = driver.get_log("browser")
    return [entry["message"] for entry in entries
            if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in expected)]


@pytest.fixture
def page(browser: Any, ledger_verified: Server, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The module's browser, signed out, for one test; afterwards a screenshot and no console error."""
    browser.get(ledger_verified.url + "/ui/login")
    browser.delete_all_cookies()
    console_errors(browser)
    browser.expected_console_errors = ()
    yield browser
    browser.save_screenshot(str(tmp_path / f"{request.node.name}.png"))
    assert console_errors(browser, browser.expected_console_errors) == [], "no JavaScript console errors"


def sign_in(driver: Any, server: Server, account: str) -> None:
    """Sign in on the sign-in page with the account's API key; waits for its account page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    key_id, secret = server.keys[account]
    driver.get(server.url + "/ui/login")
    driver.find_element(By.ID, "key_id").send_keys(key_id)
    driver.find_element(By.ID, "secret_key").send_keys(secret)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, WAIT_SECONDS).until(ec.url_contains(f"/ui/accounts/{account}"))
