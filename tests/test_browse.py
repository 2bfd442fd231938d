"""The browse page in a real headless Chromium (Debian's, driven by ChromeDriver): click from
the catalog to a collection to an item and see its thumbnail."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from byod.browse import render_site, serve
from byod.report import Report
from byod.storage import open_store
from tests.conftest import WriteRaster, ramp


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("Chromium is not installed: run scripts/test (scripts/bootstrap-browser.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # Headless, and none of the background calls Chromium makes to Google's hosts.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def test_click_from_catalog_to_item_thumbnail(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report],
    browser: webdriver.Chrome,
) -> None:  # fmt: skip
    write_raster("a_20240101.tif", ramp(64, 64, "uint8", bands=3), photometric="RGB")
    write_raster("b_20240102.tif", ramp(64, 64))
    run_ingest(title="Browse test")
    index = render_site(open_store(tmp_path / "catalog"), tmp_path / "site")
    server = serve(index.parent)
    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        browser.find_element(By.CSS_SELECTOR, "a.collection-link").click()
        assert "Browse test" in browser.find_element(By.TAG_NAME, "h1").text
        links = browser.find_elements(By.CSS_SELECTOR, "a.item-link")
        assert [link.text for link in links] == ["a_20240101", "b_20240102"]
        links[0].click()
        assert browser.find_element(By.TAG_NAME, "h1").text == "a_20240101"
        thumbnail = browser.find_element(By.ID, "thumbnail")
        width = browser.execute_script("return arguments[0].naturalWidth", thumbnail)
        assert width == 64  # decoded: the PNG is there and valid
        assert "EPSG:32633" in browser.page_source
        browser.save_screenshot(str(tmp_path / "item.png"))
    finally:
        server.shutdown()
        server.server_close()
