"""Headless Chromium for the tests that open a page as a reader would: find the browser, and read which network
requests the page itself made from Chromium's net log."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest


def find_browser() -> str:
    """Chromium's path; skip the test without one (fail under CI, where `make test` installs it)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "no Chromium found (install Debian's `chromium`, or run `make test` as root, which installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}")
    pytest.skip(reason)


def page_network_requests(netlog: Path) -> list[str]:
    """URLs the page (not the browser's own services) asked the network for: the page's requests carry the
    file:// page as their network isolation key."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except ValueError:   # a browser that did not shut down cleanly leaves the event list open
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "file://" in str(e["params"].get("network_isolation_key", ""))
            and not e["params"]["url"].startswith(("file:", "data:"))]
