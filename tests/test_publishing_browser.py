"""The public page on a phone and on a desk, the evaluation report and the installations in a real browser;
the screenshots in docs/screenshots/ come from here (``WUHAI_IOT_SCREENSHOTS=docs/screenshots``)."""

from __future__ import annotations

import base64
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from publishing_support import import_generated, small_district_census, write_year_of_records
from test_browser import (  # noqa: F401 - the fixture
    CHROMEDRIVER,
    CHROMIUM,
    DESKTOP,
    OVERFLOWING_JS,
    PHONE,
    driver,
    in_thread,
    screenshot_dir,
    use_screen,
    wait_for,
    whole_page_screenshot,
)
from web_support import PASSWORD, add_user, base_url

from wuhai_iot.clock import cst_today
from wuhai_iot.config import Config
from wuhai_iot.server import Platform

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                                reason="needs the system's headless browser (CI installs it)")  # fmt: skip


async def test_public_page_evaluation_and_installations_in_a_browser(
    config: Config, tmp_path: Path, driver: Any  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    census, paths = small_district_census(tmp_path / "census", lifts=120)
    await import_generated(config.database.path, paths)
    today = cst_today()
    write_year_of_records(config.database.path, census, today)
    raw = sqlite3.connect(config.database.path)
    raw.execute("INSERT INTO plan_phases VALUES ('pilot', ?, ?, 0, 'test')",
                ((today - timedelta(days=93)).isoformat(), (today + timedelta(days=28)).isoformat()))
    raw.execute("INSERT INTO plan_phases VALUES ('rollout', ?, ?, 0, 'test')",
                ((today + timedelta(days=29)).isoformat(), (today + timedelta(days=210)).isoformat()))
    raw.executemany("INSERT OR IGNORE INTO terminal_days VALUES (?, ?, ?)", [
        (t["protocol"], t["terminal_id"], (today - timedelta(days=n)).isoformat())
        for i, t in enumerate(census["terminals"]) for n in range(1, 12 if i % 5 else 4)])  # fmt: skip
    raw.commit()
    raw.close()
    config.subsidy.elevator = 1500
    shots = screenshot_dir(tmp_path)
    async with Platform(config) as platform:
        await add_user(platform, "panel", "expert")
        site = base_url(platform)

        def public_on_a_phone() -> list[Any]:
            use_screen(driver, PHONE, True)
            driver.get(site + "/public")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.figures"))
            overflow = driver.execute_script(OVERFLOWING_JS)
            whole_page_screenshot(driver, shots / "public-phone.png", PHONE, mobile=True)
            use_screen(driver, DESKTOP, False)
            driver.get(site + "/public")
            whole_page_screenshot(driver, shots / "public.png", DESKTOP, mobile=False)
            return overflow

        scroll_width, width, sticking_out = await in_thread(public_on_a_phone)
        assert scroll_width <= width and sticking_out == []

        def reports() -> tuple[str, int]:
            driver.get(site + "/login")
            driver.find_element(By.ID, "name").send_keys("panel")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.ID, "login").click()
            wait_for(driver, lambda d: "/login" not in d.current_url)
            driver.get(site + "/reports/evaluation?phase=pilot")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "article.report"))
            whole_page_screenshot(driver, shots / "evaluation.png", DESKTOP, mobile=False)
            pdf = driver.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})
            document = base64.b64decode(pdf["data"])
            (tmp_path / "evaluation-a4.pdf").write_bytes(document)
            driver.get(site + "/reports/installations")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table"))
            whole_page_screenshot(driver, shots / "installations.png", DESKTOP, mobile=False)
            return driver.page_source, document.count(b"/Type /Page\n") + document.count(b"/Type /Page\r") + \
                document.count(b"/Type /Page ") + document.count(b"/Type/Page")  # fmt: skip

        source, pages = await in_thread(reports)
    assert "已验收" in source and "1500.00" in source
    assert pages >= 2
