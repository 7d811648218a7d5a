"""The reviewer's desk in a real browser: headless Chromium drives the admin on a live server."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests import media
from tests.conftest import ROOT, make_user, submit, token_client, wait_for_analysis
from tests.workflows_tests.accessibility import axe_violations, violations_text
from workflows.models import Case, Note

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"
WAIT_S = 60

pytestmark = [
    pytest.mark.worker,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), reason="needs chromium and chromium-driver"
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, driven through Debian's chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, WAIT_S).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def wait_for_message(driver: WebDriver, text: str) -> None:
    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), text)
    )


def log_in(driver: WebDriver, base_url: str, user: Any, next_path: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base_url}/admin/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys(user.username)
    driver.find_element(By.NAME, "password").send_keys(f"pw-{user.username}-1234")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(driver, ".case-desk")


def click_move(driver: WebDriver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'form[data-move="{name}"] button[type=submit]').click()


def blur_of(driver: WebDriver, element: WebElement) -> str:
    return str(driver.execute_script("return getComputedStyle(arguments[0]).filter", element))


def save_full_page(driver: WebDriver, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


DOC_IMAGES = ROOT / "docs" / "images"
DOC_IMAGE_WIDTH = 900


def save_doc_image(screenshot: Path, name: str) -> None:
    """With VERIFY_DOC_IMAGES=1, write a reduced copy of a screenshot to docs/images for the README."""
    if os.environ.get("VERIFY_DOC_IMAGES") != "1":
        return
    with Image.open(screenshot) as shot:
        height = round(shot.height * DOC_IMAGE_WIDTH / shot.width)
        small = shot.convert("RGB").resize((DOC_IMAGE_WIDTH, height), Image.Resampling.LANCZOS)
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    small.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(DOC_IMAGES / name, optimize=True)


def test_a_reviewer_proposes_a_verdict_and_a_lead_closes_the_case_in_the_browser(
    worker, live_server, browser, footage_dir
):
    # given: a clip with a creation time and a location, analysed by the real worker
    analyst = make_user("ana", "analyst")
    reviewer = make_user("rev", "reviewer", is_staff=True)
    lead = make_user("lea", "lead", is_staff=True)
    clip = media.with_metadata(
        media.shots_clip(footage_dir / "browser-shots.mp4"),
        footage_dir / "browser-tagged.mp4",
        {"creation_time": "2024-03-02T10:15:00.000000Z", "location": "+50.4253+036.8949/"},
    )
    api = token_client(analyst)
    submitted = submit(
        api,
        clip,
        title="Soldiers in a border village",
        claim="Posted on Telegram as filmed yesterday, said to show soldiers hiding in a border village.",
        source_url="https://t.me/example/1",
    )
    assert submitted.status_code == 202, submitted.content
    outcome = wait_for_analysis(api, submitted.json()["id"])
    assert outcome.detail["state"] == "succeeded"
    case = Case.objects.get(pk=submitted.json()["case"])
    assert case.status == "ready_for_review"
    case_path = f"/admin/workflows/case/{case.pk}/change/"

    # when: the reviewer opens the case on the desk
    log_in(browser, live_server.url, reviewer, case_path)

    # then: the keyframe grid is there, blurred, and a click reveals one frame in place
    tiles = browser.find_elements(By.CSS_SELECTOR, ".kf-grid .kf-blur")
    assert len(tiles) == len(outcome.detail["keyframes"]) >= 4
    first_image = tiles[0].find_element(By.TAG_NAME, "img")
    WebDriverWait(browser, WAIT_S).until(
        lambda _: browser.execute_script("return arguments[0].naturalWidth", first_image)
    )
    assert "blur" in blur_of(browser, first_image)
    tiles[0].click()
    assert "kf-revealed" in str(tiles[0].get_attribute("class"))
    WebDriverWait(browser, WAIT_S).until(lambda _: blur_of(browser, first_image) == "none")
    assert "blur" in blur_of(browser, tiles[1].find_element(By.TAG_NAME, "img"))
    assert len(browser.window_handles) == 1  # the first click reveals; it does not open the image
    # and: the keyboard reveals a frame too
    tiles[1].send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT_S).until(
        lambda _: blur_of(browser, tiles[1].find_element(By.TAG_NAME, "img")) == "none"
    )
    assert len(browser.window_handles) == 1
    # and: axe-core finds nothing serious on the case page
    violations = axe_violations(browser)
    assert not violations, violations_text(violations)
    assert "0:02.000" in browser.find_element(By.CSS_SELECTOR, ".kf-grid").text
    assert "2024-03-02T10:15:00+00:00" in browser.find_element(By.CSS_SELECTOR, ".metadata-panel").text

    # when: the reviewer adds a note, takes the case and proposes a verdict
    browser.find_element(By.ID, "id_body").send_keys("No earlier copy found by reverse image search.")
    browser.find_element(By.CSS_SELECTOR, ".note-add button[type=submit]").click()
    wait_for_message(browser, "Note added.")
    click_move(browser, "take")
    wait_for_message(browser, "The case is now: In review.")
    propose = browser.find_element(By.CSS_SELECTOR, 'form[data-move="propose"]')
    Select(propose.find_element(By.NAME, "verdict")).select_by_value("inconclusive")
    propose.find_element(By.NAME, "rationale").send_keys("The place and date cannot be confirmed from the footage.")
    click_move(browser, "propose")
    wait_for_message(browser, "The case is now: Verdict proposed.")
    assert {e.get_attribute("data-move") for e in browser.find_elements(By.CSS_SELECTOR, "form.desk-move")} == {"hold"}

    # when: the lead logs in and approves
    log_in(browser, live_server.url, lead, case_path)
    assert "Inconclusive" in browser.find_element(By.ID, "review").text
    click_move(browser, "approve")
    wait_for_message(browser, "The case is now: Closed.")

    # then: the case shows closed, with the whole story in its history
    assert browser.find_element(By.CSS_SELECTOR, ".status-badge").text == "Closed"
    history = browser.find_element(By.ID, "history").text
    for entry in ("Case opened", "Media submitted", "Analysis finished", "Note added", "Verdict proposed",
                  "Verdict approved"):  # fmt: skip
        assert entry in history
    case.refresh_from_db()
    assert (case.status, case.verdict, case.verdict_proposed_by, case.verdict_approved_by) == (
        "closed",
        "inconclusive",
        reviewer,
        lead,
    )
    assert Note.objects.filter(case=case, author=reviewer).exists()
    browser.find_elements(By.CSS_SELECTOR, ".kf-grid .kf-blur")[0].click()
    screenshot = ARTIFACTS / "admin-case-page.png"
    save_full_page(browser, screenshot)
    assert screenshot.stat().st_size > 10_000
    save_doc_image(screenshot, "desk-case-page.png")
    # the case list shows it closed, with its verdict and a blurred thumbnail
    browser.get(f"{live_server.url}/admin/workflows/case/")
    row = wait_for(browser, "#result_list tbody tr")
    assert "Closed" in row.text and "Authentic" not in row.text and "Inconclusive" in row.text
    assert "blur" in blur_of(browser, row.find_element(By.CSS_SELECTOR, ".kf-thumb img"))
    violations = axe_violations(browser)
    assert not violations, violations_text(violations)
    save_full_page(browser, ARTIFACTS / "admin-case-list.png")
    save_doc_image(ARTIFACTS / "admin-case-list.png", "desk-case-list.png")
    # the media page: facts in words, keyframes blurred, nothing serious for axe
    item_id = submitted.json()["id"]
    browser.get(f"{live_server.url}/admin/verify/mediaitem/{item_id}/change/")
    facts = wait_for(browser, "#evidence").text
    assert "Original file name" in facts and "integrity_mismatch" not in browser.page_source
    assert "blur" in blur_of(browser, browser.find_element(By.CSS_SELECTOR, "#keyframes .kf-blur img"))
    assert "first frame after a cut" in browser.find_element(By.ID, "keyframes").text
    violations = axe_violations(browser)
    assert not violations, violations_text(violations)
    save_full_page(browser, ARTIFACTS / "admin-media-page.png")
