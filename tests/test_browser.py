"""A real browser (headless Chromium from the system packages, driven by selenium) against the real
platform: log in, watch a trapped alarm arrive live after an ELink FAULT frame over TCP, acknowledge it,
look up a cylinder and a vehicle, and take screenshots of the dashboard and the lift page.

Screenshots go to ``$WUHAI_IOT_SCREENSHOTS`` when set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from lift_support import LIFT, LiftTerminal
from web_support import PASSWORD, add_user, base_url

from wuhai_iot.server import Platform

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
    reason="needs the system's headless browser: apt-get install chromium chromium-driver (CI installs it)",
)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1366,768",
                     "--lang=zh-CN", f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WUHAI_IOT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def in_thread(work: Callable[..., Any], *args: Any) -> Any:
    """Selenium blocks: drive it from a thread so the platform's event loop keeps serving."""
    return await asyncio.to_thread(work, *args)


def wait_for(browser: Any, condition: Callable[[Any], Any], timeout: float = 10) -> Any:
    """Poll ``condition``; an element the live page re-rendered between two looks at it is looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(condition)


def visible_text(browser: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.ID, element_id)
    return element.text if element.is_displayed() else ""


async def test_district_officer_in_a_real_browser(
    platform: Platform, database: aiosqlite.Connection, driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    shots = screenshot_dir(tmp_path)
    await add_user(platform, "haibowan", "district", district="海勃湾区")
    site = base_url(platform)
    terminal = await LiftTerminal.connect(platform, LIFT)
    now = int(time.time())
    await terminal.status(now - 5, floor=3, running=True, speed=1.2)
    await terminal.status(now - 1, floor=-1, door="closed", occupied=True)

    def log_in() -> None:
        driver.get(site + "/")  # not logged in: the login page
        wait_for(driver, lambda d: d.find_elements(By.ID, "password"))
        driver.find_element(By.ID, "name").send_keys("haibowan")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "open-alarms"))
        wait_for(driver, lambda d: "on" in d.find_element(By.ID, "live-dot").get_attribute("class"))

    await in_thread(log_in)
    assert await in_thread(visible_text, driver, "trapped-banner") == ""

    # Passengers trapped: the terminal reports it; the open dashboard shows it without a reload.
    await terminal.fault(int(time.time()), code=1, active=True, floor=-1)

    def trapped_on_screen() -> str:
        wait_for(driver, lambda d: "黄河花园" in visible_text(d, "trapped-banner"), timeout=5)
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#open-alarms button[data-action="acknowledge"]'))
        driver.save_screenshot(str(shots / "dashboard.png"))
        return driver.find_element(By.ID, "trapped-banner").text

    banner = await in_thread(trapped_on_screen)
    assert "困人 1 起" in banner

    def acknowledge() -> str:
        row = driver.find_element(By.CSS_SELECTOR, '#open-alarms tr[data-alarm-row]')
        row.find_element(By.NAME, "note").send_keys("已电话通知维保单位")
        row.find_element(By.CSS_SELECTOR, 'button[data-action="acknowledge"]').click()
        wait_for(driver, lambda d: "done=acknowledged" in d.current_url)
        return driver.find_element(By.CSS_SELECTOR, ".flash").text

    assert await in_thread(acknowledge) == "告警已确认。"
    row = await (await database.execute("SELECT status, acknowledged_by, acknowledge_note FROM alarms WHERE kind = 'trapped'")).fetchone()
    assert tuple(row) == ("acknowledged", "haibowan", "已电话通知维保单位")

    def lift_page() -> str:
        driver.get(f"{site}/lifts/{LIFT}")
        wait_for(driver, lambda d: "on" in d.find_element(By.ID, "live-dot").get_attribute("class"))
        driver.save_screenshot(str(shots / "lift.png"))
        return driver.find_element(By.ID, "lift-state").text

    state = await in_thread(lift_page)
    assert "-1" in state and "在线" in state

    def look_up(path: str, field: str, text: str, button: str, result_id: str) -> str:
        driver.get(site + path)
        driver.find_element(By.ID, field).send_keys(text)
        driver.find_element(By.ID, button).click()
        try:
            wait_for(driver, lambda d: d.find_elements(By.ID, result_id))
        except Exception:
            print(driver.current_url, driver.page_source[-3000:])
            raise
        return driver.find_element(By.ID, result_id).text

    cylinder = await in_thread(look_up, "/cylinders", "cylinder-q", "E004015012345678", "cylinder-search", "cylinder-card")
    assert "LPG-YSP35.5-0012345" in cylinder and "民用液化气瓶" in cylinder
    vehicle = await in_thread(look_up, "/vehicles", "plate", "蒙LT1234", "plate-search", "vehicle-card")
    assert "蒙L·T1234" in vehicle and "使用登记证有效" in vehicle
    assert (shots / "dashboard.png").stat().st_size > 10_000 and (shots / "lift.png").stat().st_size > 10_000
    await terminal.close()
