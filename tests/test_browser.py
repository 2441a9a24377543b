"""A real browser (headless Chromium from the system packages, driven by selenium) against the real
platform: log in, watch a trapped alarm arrive live after an ELink FAULT frame over TCP, acknowledge it,
look up a cylinder and a vehicle; then the same pages on a phone (390 px): the menu folded, nothing wider
than the screen. Screenshots of each page at 1440 px and 390 px.

Screenshots are taken when ``$WUHAI_IOT_SCREENSHOTS`` names a folder for them (docs/screenshots): a page
from top to bottom costs about half a second of the browser's time, for pictures nobody looks at otherwise.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from conftest import CENSUS, import_census
from lift_support import LIFT, LiftTerminal
from vehicle_support import VehicleTerminal, record
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


DESKTOP, PHONE = (1440, 900), (390, 844)

# Elements that stick out of the viewport, other than those inside a box that scrolls or clips them
# (a wide table in its scrolling box is fine; a page that scrolls sideways is not).
OVERFLOWING_JS = """
const width = document.documentElement.clientWidth;
const clipped = (el) => {
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true;
  }
  return false;
};
const found = [];
for (const el of document.body.querySelectorAll('*')) {
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) continue;
  if ((box.right > width + 1 || box.left < -1) && !clipped(el)) {
    found.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && el.className.baseVal === undefined
      ? '.' + String(el.className).split(' ').join('.') : '') + ' ' + Math.round(box.left) + '..' + Math.round(box.right));
  }
}
// What must fit the screen without scrolling at all: the banner, the figures, the lift's status box, the
// alarm cards and the look-up cards.
for (const el of document.querySelectorAll('#trapped-banner, .cards, #lift-state, table.cards-on-phone, .search-big,'
                                           + ' #vehicle-card, #cylinder-card, #alarm-evidence')) {
  const box = el.getBoundingClientRect();
  if (box.width > 0 && (el.scrollWidth > el.clientWidth + 1 || box.right > width + 1)) {
    found.push('does not fit: ' + (el.id || el.className) + ' ' + el.scrollWidth + '>' + el.clientWidth);
  }
}
return [document.documentElement.scrollWidth, width, found.slice(0, 10)];
"""


def use_screen(browser: Any, size: tuple[int, int], mobile: bool) -> None:
    """Emulate a screen of ``size`` CSS pixels (a phone: with its meta-viewport behaviour and touch)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile,
    })  # fmt: skip


SCREENSHOTS = os.environ.get("WUHAI_IOT_SCREENSHOTS")


def whole_page_screenshot(browser: Any, path: Path, size: tuple[int, int], mobile: bool) -> None:
    """The page from top to bottom (at most 4,000 px), then the screen as it was (when screenshots are asked for)."""
    if not SCREENSHOTS:
        return
    height = browser.execute_script("return document.documentElement.scrollHeight")
    use_screen(browser, (size[0], max(size[1], min(int(height), 4000))), mobile=mobile)
    browser.save_screenshot(str(path))
    use_screen(browser, size, mobile=mobile)


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(SCREENSHOTS or tmp_path / "screenshots")
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
    # Earlier today: a door fault that cleared, and fills the platform refused (the charts have something).
    await terminal.fault(now - 3600, code=7, active=True, floor=5)
    await terminal.fault(now - 3000, code=7, active=False, floor=5)
    refused = [(now - 600 * i, 150301, 1 + i % 4, i, "E0040150", None, 9001, "LPG", 0, 0, reason, 0, "")
               for i, reason in enumerate((10, 10, 10, 10, 10, 2, 2, 2, 1, 1, 5, 11, 12), start=1)]  # fmt: skip
    await platform.writer.write([(
        "INSERT INTO fill_decisions (decided_at, station_code, scale, request_seq, tag, cylinder_code, operator_card,"
        " medium, gross_before_g, permit, reason, net_limit_g, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row) for row in refused])  # fmt: skip
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

    await in_thread(use_screen, driver, DESKTOP, False)
    await in_thread(log_in)
    assert await in_thread(visible_text, driver, "trapped-banner") == ""

    # Passengers trapped: the terminal reports it; the open dashboard shows it without a reload.
    await terminal.fault(int(time.time()), code=1, active=True, floor=-1)

    def trapped_on_screen() -> str:
        wait_for(driver, lambda d: "黄河花园" in visible_text(d, "trapped-banner"), timeout=5)
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#open-alarms button[data-action="acknowledge"]'))
        whole_page_screenshot(driver, shots / "dashboard.png", DESKTOP, mobile=False)
        return driver.find_element(By.ID, "trapped-banner").text

    banner = await in_thread(trapped_on_screen)
    assert "困人 1 起" in banner

    def acknowledge() -> str:
        def note_and_click(d: Any) -> bool:  # (again on a row the live page re-rendered meanwhile)
            row = d.find_element(By.CSS_SELECTOR, '#open-alarms tr[data-alarm-row]')
            row.find_element(By.NAME, "note").send_keys("已电话通知维保单位")
            row.find_element(By.CSS_SELECTOR, 'button[data-action="acknowledge"]').click()
            return True

        wait_for(driver, note_and_click)
        wait_for(driver, lambda d: "done=acknowledged" in d.current_url)
        return driver.find_element(By.CSS_SELECTOR, ".flash").text

    assert await in_thread(acknowledge) == "告警已确认。"
    row = await (await database.execute("SELECT status, acknowledged_by, acknowledge_note FROM alarms WHERE kind = 'trapped'")).fetchone()
    assert tuple(row) == ("acknowledged", "haibowan", "已电话通知维保单位")

    def lift_page() -> str:
        driver.get(f"{site}/lifts/{LIFT}")
        wait_for(driver, lambda d: "on" in d.find_element(By.ID, "live-dot").get_attribute("class"))
        whole_page_screenshot(driver, shots / "lift.png", DESKTOP, mobile=False)
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
    # The taxi's JT/T 808 terminal reports a short drive past gas station 150402: its track and the station.
    (tmp_path / "terminals.csv").write_text("protocol,terminal_id,key,plate\njt808,013900000077,BROWSER1,蒙L·T1234\n",
                                            encoding="utf-8")  # fmt: skip
    (tmp_path / "stations.csv").write_text(
        "station_code,name,district,licence_no,licence_expiry,media,latitude,longitude\n"
        "150402,乌达区某加气站,乌达区,TS4215002-2026,2099-12-31,CNG|LNG,39.5071,106.7248\n", encoding="utf-8"
    )  # fmt: skip
    await import_census(platform.config.database.path, [tmp_path / "stations.csv", tmp_path / "terminals.csv"])
    taxi = await VehicleTerminal.connect(platform, "013900000077", "BROWSER1")
    drive = [(39.495 + 0.0015 * i, 106.715 + 0.0012 * i) for i in range(12)]
    await taxi.report([record(datetime.now(UTC) - timedelta(minutes=12 - i), where, speed_kmh=35, pressure_mpa=15.5 - i / 10,
                              gas_lel_pct=0.4) for i, where in enumerate(drive)])  # fmt: skip
    await taxi.close()
    vehicle = await in_thread(look_up, "/vehicles", "plate", "蒙LT1234", "plate-search", "vehicle-card")
    assert "蒙L·T1234" in vehicle and "使用登记证有效" in vehicle
    track = await in_thread(lambda: driver.find_element(By.ID, "vehicle-track").get_attribute("innerHTML"))
    assert "<polyline" in track and "乌达区某加气站" in track
    assert "14.4 MPa" in await in_thread(lambda: driver.find_element(By.ID, "vehicle-live").text)
    await in_thread(whole_page_screenshot, driver, shots / "vehicle.png", DESKTOP, False)
    alarm_id = (await (await database.execute("SELECT id FROM alarms WHERE kind = 'trapped'")).fetchone())[0]

    def alarm_page() -> str:
        driver.get(f"{site}/alarms/{alarm_id}")
        wait_for(driver, lambda d: d.find_elements(By.ID, "alarm-evidence"))
        whole_page_screenshot(driver, shots / "alarm.png", DESKTOP, mobile=False)
        return driver.find_element(By.ID, "alarm-evidence").text

    assert "楼层" in await in_thread(alarm_page) and "floor" not in await in_thread(alarm_page)

    # The same pages on a phone: the menu folded behind its button, nothing wider than the screen.
    def on_phone(path: str, ready: str, name: str) -> tuple[bool, bool, list[Any]]:
        """The page at phone width: is the menu folded, and what sticks out (a screenshot when named)."""
        use_screen(driver, PHONE, mobile=True)
        driver.get(site + path)
        wait_for(driver, lambda d: d.find_elements(By.ID, ready))
        menu_hidden = not driver.find_element(By.ID, "sidenav").is_displayed()
        button_shown = driver.find_element(By.ID, "menu-button").is_displayed()
        fits = driver.execute_script(OVERFLOWING_JS)
        if name:
            whole_page_screenshot(driver, shots / f"{name}-phone.png", PHONE, mobile=True)
        return menu_hidden, button_shown, fits

    for path, ready, name in (("/", "open-alarms", "dashboard"), (f"/alarms/{alarm_id}", "alarm-evidence", "alarm"),
                              (f"/lifts/{LIFT}", "lift-state", "lift"), ("/vehicles?plate=蒙LT1234", "vehicle-card", "vehicle"),
                              ("/cylinders?q=E004015012345678", "cylinder-card", "cylinder"),
                              ("/alarms?status=all", "alarm-list", "alarms"),
                              # and the other pages an officer may open on the way (no screenshot)
                              ("/lifts", "sidenav", ""), ("/maintenance", "flagged-visits", ""), ("/rescues", "sidenav", ""),
                              ("/stations", "sidenav", ""), ("/stations/150301", "sidenav", ""),
                              ("/reports/monthly", "sidenav", ""), ("/rollout", "sidenav", ""),
                              ("/no/such/page", "error-page", "")):  # fmt: skip
        menu_hidden, button_shown, (page_width, screen_width, overflowing) = await in_thread(on_phone, path, ready, name)
        assert menu_hidden and button_shown, f"{path}: the menu is folded on a phone"
        assert page_width <= screen_width == PHONE[0] and overflowing == [], f"{path}: wider than the phone: {overflowing}"

    def open_menu() -> bool:
        driver.get(site + "/")
        wait_for(driver, lambda d: d.find_elements(By.ID, "open-alarms"))
        driver.find_element(By.ID, "menu-button").click()
        wait_for(driver, lambda d: d.find_element(By.ID, "sidenav").is_displayed())
        if SCREENSHOTS:
            driver.save_screenshot(str(shots / "menu-phone.png"))
        return bool(driver.find_element(By.LINK_TEXT, "电梯列表").is_displayed())

    assert await in_thread(open_menu)
    for name in ("dashboard", "lift", "alarm", "vehicle") if SCREENSHOTS else ():
        assert (shots / f"{name}.png").stat().st_size > 10_000 and (shots / f"{name}-phone.png").stat().st_size > 10_000
    await terminal.close()


async def test_census_upload_in_a_real_browser_explains_each_rejected_row(
    platform: Platform, driver: Any, tmp_path: Path
) -> None:
    """The supervisor's staff upload a district's file with mistakes a spreadsheet makes: the page names each
    rejected row in Chinese (line, column, what is wrong, what to do), on a desk and on a phone (as cards)."""
    from selenium.webdriver.common.by import By

    shots = screenshot_dir(tmp_path)
    await add_user(platform, "shiju", "admin")
    site = base_url(platform)
    header, good = (CENSUS / "elevators.csv").read_text(encoding="utf-8").splitlines()[:2]

    def lift(code: str, **cells: str) -> str:
        values = dict(zip(header.split(","), good.split(",")), device_code=code, **cells)
        return ",".join(values.values())

    upload = tmp_path / "elevators-海勃湾区-2026-12.csv"
    upload.write_bytes("\r\n".join([
        header,
        lift("31101503022012000901"),
        lift("31101503022012000902", next_inspection="2027/1/31"),
        lift("3.11015E+19"),
        lift("31101503022012000903", district="包头市"),
        lift("31101503022012000904", maintenance_company=""),
        lift("31101503022012000905", lowest_floor="5", highest_floor="3"),
        lift("31101503022012000901"),
        lift("31101503022012000906"),
    ]).encode("gb18030"))  # fmt: skip

    def upload_it() -> list[str]:
        use_screen(driver, DESKTOP, mobile=False)
        driver.get(site + "/census")
        wait_for(driver, lambda d: d.find_elements(By.ID, "password"))
        driver.find_element(By.ID, "name").send_keys("shiju")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login").click()
        wait_for(driver, lambda d: d.find_elements(By.NAME, "files"))
        driver.find_element(By.NAME, "files").send_keys(str(upload))
        driver.find_element(By.CSS_SELECTOR, "form[action='/census'] button[type=submit]").click()
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.census-rejections"))
        whole_page_screenshot(driver, shots / "census.png", DESKTOP, mobile=False)
        return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table.census-rejections tbody tr")]

    rows = await in_thread(upload_it)
    assert len(rows) == 6
    assert rows[0].startswith("第 3 行") and "「2027/1/31」不是有效日期" in rows[0] and "2027-01-31" in rows[0]
    assert "最高层 3 低于最低层 5" in rows[4] and "在本文件中重复（第 2 行已有）" in rows[5]

    def on_phone() -> tuple[bool, list[Any]]:
        use_screen(driver, PHONE, mobile=True)
        menu_hidden = not driver.find_element(By.ID, "sidenav").is_displayed()
        fits = driver.execute_script(OVERFLOWING_JS)
        whole_page_screenshot(driver, shots / "census-phone.png", PHONE, mobile=True)
        return menu_hidden, fits

    menu_hidden, (page_width, screen_width, overflowing) = await in_thread(on_phone)
    assert menu_hidden and page_width <= screen_width == PHONE[0] and overflowing == [], overflowing
