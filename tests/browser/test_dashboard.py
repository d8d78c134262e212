"""A shift lead at the dashboard, in a real headless Chromium: log in, watch a job
appear and finish without reloading, cancel a long job, retry a failed feature until it
succeeds. Each step leaves a screenshot in the test's temporary folder."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.bodies import make_source
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.stack import RefractStack, wait_for_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# Long enough for a loaded CI machine; each wait ends as soon as the page shows the state.
WAIT_S = 60


def wait_until(driver: webdriver.Chrome, check: Callable[[], Any], what: str) -> Any:
    """Poll the page until ``check`` is truthy, then return what it returned.

    The page redraws itself as the job moves on: an element found just before a redraw
    is stale by the time it is read, and the next poll finds its replacement.
    """
    waiting = WebDriverWait(
        driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    return waiting.until(lambda _driver: check(), message=f"the page never showed {what}")


def is_gone(element: WebElement) -> bool:
    """Whether ``element`` has left the document (the page it was on was replaced).

    Chromium reports a node removed mid-command either as a stale element or, when the
    removal races the inspector, as "Node with given id does not belong to the document".
    """
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            return True
        raise
    return False


def wait_replaced(driver: webdriver.Chrome, element: WebElement, what: str) -> None:
    """Wait until the page that held ``element`` has been replaced by the next one."""
    WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
        lambda _driver: is_gone(element), message=f"the page never moved on after {what}"
    )


def log_in(driver: webdriver.Chrome, stack: RefractStack, key: str, shots: Path) -> None:
    driver.get(f"{stack.url}/admin/jobs")
    assert "/admin/login" in driver.current_url  # sent to log in first
    driver.save_screenshot(str(shots / "01-login.png"))
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "login").click()
    # The path, not the URL's end: the login page's own URL ends with "?next=/admin/jobs",
    # and a test that went on from there raced the login's redirect (its next page, or
    # the mark it left on the login page, lost to the jobs page arriving after).
    wait_until(driver, lambda: urlsplit(driver.current_url).path == "/admin/jobs", "the jobs page")
    wait_until(
        driver,
        lambda: driver.execute_script("return document.readyState") == "complete",
        "the jobs page loaded",
    )


def submit_video(booth: httpx.Client, marker: str) -> str:
    body = {"kind": "video", "source": make_source(marker)}
    response = booth.post("/api/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def status_in_row(driver: webdriver.Chrome, job_id: str) -> str | None:
    rows = driver.find_elements(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
    return rows[0].get_attribute("data-status") if rows else None


def feature_status(driver: webdriver.Chrome, feature: str) -> str | None:
    cards = driver.find_elements(By.ID, f"feature-{feature}")
    return cards[0].get_attribute("data-status") if cards else None


def mark_page(driver: webdriver.Chrome) -> None:
    """Leave a mark in the page's JavaScript state; a reload would wipe it."""
    driver.execute_script("window.refractNoReload = true;")


def still_same_page(driver: webdriver.Chrome) -> bool:
    return bool(driver.execute_script("return window.refractNoReload === true;"))


def test_log_in_and_watch_a_job_appear_and_finish_without_a_reload(
    stack: RefractStack,
    booth: httpx.Client,
    admin_key: str,
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    log_in(browser, stack, admin_key, tmp_path)
    mark_page(browser)
    job_id = submit_video(booth, f"appear-{uuid.uuid4().hex[:8]}")

    wait_until(browser, lambda: status_in_row(browser, job_id), "the new job's row")
    browser.save_screenshot(str(tmp_path / "02-job-appeared.png"))
    wait_until(browser, lambda: status_in_row(browser, job_id) == "succeeded", "it succeed")
    assert still_same_page(browser), f"the page was loaded again: now {browser.current_url}"
    browser.save_screenshot(str(tmp_path / "03-job-finished.png"))

    browser.get(f"{stack.url}/admin/")
    wait_until(browser, lambda: browser.find_elements(By.ID, "workers-online"), "a worker")
    assert "succeeded" in browser.find_element(By.ID, "jobs-per-minute").text
    browser.save_screenshot(str(tmp_path / "04-overview.png"))


def test_cancel_a_long_job_from_its_page(
    stack: RefractStack,
    booth: httpx.Client,
    admin_key: str,
    fake_gemini: FakeGemini,
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    marker = f"long-{uuid.uuid4().hex[:8]}"
    # Every call of this job hangs: the job stays running until someone cancels it.
    fake_gemini.script(None, *[Reply.hang(15) for _ in range(3)])
    log_in(browser, stack, admin_key, tmp_path)
    job_id = submit_video(booth, marker)
    browser.get(f"{stack.url}/admin/jobs/{job_id}")
    mark_page(browser)
    wait_until(browser, lambda: feature_status(browser, "summary") == "running", "it running")
    browser.save_screenshot(str(tmp_path / "05-long-job-running.png"))

    button = browser.find_element(By.ID, "cancel-job")
    button.click()
    wait_replaced(browser, button, "cancel")
    wait_until(
        browser,
        lambda: browser.find_element(By.ID, "job-status").text == "canceled",
        "the job canceled",
    )
    for feature in ("summary", "comments", "thumbnail"):
        assert feature_status(browser, feature) == "canceled"
    browser.save_screenshot(str(tmp_path / "06-long-job-canceled.png"))
    assert booth.get(f"/api/v1/jobs/{job_id}").json()["status"] == "canceled"


def test_retry_a_failed_feature_until_it_succeeds(
    stack: RefractStack,
    booth: httpx.Client,
    admin_key: str,
    fake_gemini: FakeGemini,
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    marker = f"flaky-{uuid.uuid4().hex[:8]}"
    # Only `summary` sees the marker: its first run and its first retry each fail twice
    # (REFRACT_MODEL_MAX_ATTEMPTS=2); the second retry gets a real answer.
    fake_gemini.script(marker, *[Reply.server_error(500) for _ in range(4)])
    job_id = submit_video(booth, marker)
    assert wait_for_job(booth, job_id)["status"] == "partial"

    log_in(browser, stack, admin_key, tmp_path)
    browser.get(f"{stack.url}/admin/jobs/{job_id}")
    mark_page(browser)
    assert feature_status(browser, "summary") == "failed"
    browser.save_screenshot(str(tmp_path / "07-feature-failed.png"))

    for attempt in (1, 2):
        button = browser.find_element(By.ID, "retry-summary")
        button.click()
        # The form posts and the page comes back: wait for the new one before reading it.
        wait_replaced(browser, button, f"retry {attempt}")
        expected = "failed" if attempt == 1 else "succeeded"
        wait_until(
            browser,
            lambda expected=expected: feature_status(browser, "summary") == expected,  # type: ignore[misc]
            f"summary {expected} after retry {attempt}",
        )
        browser.save_screenshot(str(tmp_path / f"08-after-retry-{attempt}.png"))
    assert browser.find_element(By.ID, "job-status").text == "succeeded"
    assert "Retrying summary" in browser.page_source
    job = booth.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["features"]["summary"]["result"]
