"""A real headless browser for the wallboard: Debian's chromium driven through its chromedriver
(selenium). Selenium blocks, and the engine under test runs in the test's own event loop, so every
browser call goes through a thread (:func:`call`, :func:`until`): the engine keeps serving the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

T = TypeVar("T")


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if absent:
        return (f"{' and '.join(absent)} missing: `python3 tools/stack.py deps` (run by make test) installs "
                "the Debian packages chromium and chromium-driver")
    return None


@asynccontextmanager
async def chromium(width: int = 1920, height: int = 1080) -> AsyncIterator[Any]:
    """A headless chromium showing pages at ``width`` x ``height`` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = await asyncio.to_thread(webdriver.Chrome, options=options, service=Service(str(CHROMEDRIVER)))
    try:
        # the page itself gets width x height (--window-size counts the window's frame too)
        await asyncio.to_thread(driver.execute_cdp_cmd, "Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        await asyncio.to_thread(driver.quit)


async def call(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def until(driver: Any, condition: Callable[[Any], T], timeout: float = 15, what: str = "") -> T:
    """Poll ``condition(driver)`` every 50 ms until it is truthy; its value."""
    from selenium.webdriver.support.wait import WebDriverWait

    wait = WebDriverWait(driver, timeout, poll_frequency=0.05)
    return await asyncio.to_thread(wait.until, condition, what)


def text(driver: Any, css: str) -> str | None:
    """The text of the first element matching ``css`` (None when there is none)."""
    return driver.execute_script(
        "const n = document.querySelector(arguments[0]); return n ? n.textContent : null;", css)
