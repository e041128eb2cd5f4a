"""JupyterLab on loopback in headless Debian Chromium: run the quickstart, check the widget and table."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on loopback with a known token, serving a copy of the quickstart."""
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", tmp_path / "quickstart.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "SCAIGRID_HOST": "",
        "SCAIGRID_API_KEY": "",
    }
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--allow-root",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "jupyterlab.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield f"{url}/lab/tree/quickstart.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.browser
@pytest.mark.slow
def test_quickstart_in_jupyterlab(jupyterlab: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect, sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.goto(jupyterlab)
            page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
            select = page.locator(".jp-Dialog button", has_text="Select")
            try:  # a fresh server may ask which kernel to start
                select.wait_for(timeout=10_000)
                select.click()
            except PlaywrightTimeout:
                pass
            news = page.locator(".jp-toast-button", has_text="No")
            if news.count():
                news.first.click()
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
            expect(idle).to_be_attached(timeout=60_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            first = page.locator(".jp-OutputArea-output .scaimind-board").first
            first.wait_for(timeout=60_000)
            # the live widget rendered (not the text fallback) and reached its success state
            success = page.locator(".scaimind-board .widget-hprogress .progress-bar-success")
            expect(success).to_have_count(4, timeout=120_000)
            expect(first).to_contain_text("COMPLETED")
            expect(page.locator("table.scaimind-results").first).to_be_visible()
            expect(page.locator("table.dataframe").first).to_contain_text("exact_match")
            expect(
                page.locator(".jp-OutputArea-output", has_text="the kernel is free while")
            ).to_have_count(1)
            first.scroll_into_view_if_needed()
            first.screenshot(path=str(ARTIFACTS / "widget.png"))
            page.screenshot(path=str(ARTIFACTS / "quickstart-jupyterlab.png"), full_page=True)
        except Exception:
            page.screenshot(
                path=str(ARTIFACTS / "quickstart-jupyterlab-failure.png"), full_page=True
            )
            (ARTIFACTS / "quickstart-jupyterlab-failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    docs = ROOT / "docs" / "img"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTIFACTS / "widget.png", docs / "widget.png")
