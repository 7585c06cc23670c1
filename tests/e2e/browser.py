"""Debian's headless Chromium for the dashboard tests: load a page, return the DOM after it rendered."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import pytest


def chromium_binary() -> str:
    """The Chromium executable; skips with the install hint when it is missing."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium; scripts/ensure-system-packages.sh)")
    raise AssertionError("unreachable")


def dump_dom(url: str, *, timeout: float = 60.0, extra_args: Sequence[str] = ()) -> str:
    """The serialised DOM of ``url`` as headless Chromium renders it (redirects and cookies followed).

    ``extra_args`` go to Chromium as they are (e.g. the pinned key of a server on a private CA)."""
    with tempfile.TemporaryDirectory(prefix="pactum-chromium-") as profile:
        done = subprocess.run(
            [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", *extra_args, "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-1500:]}"
    return done.stdout
