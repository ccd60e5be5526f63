"""Capture the README screenshots from a running Forge (demo data loaded).

    .venv/bin/python manage.py forge_demo && make run   # or any running Forge with the demo data
    .venv/bin/python docs/screenshots/capture.py http://127.0.0.1:8000

Uses Debian's Chromium through Playwright; nothing is downloaded.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def login(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def shot(page: Page, base: str, path: str, name: str, wait_for: str | None = None, full_page: bool = True) -> None:
    page.goto(f"{base}{path}")
    if wait_for:
        page.wait_for_selector(wait_for)
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--engineer", default="erin")
    parser.add_argument("--officer", default="olga")
    parser.add_argument("--engineer-password", default="forge-demo-erin")
    parser.add_argument("--officer-password", default="forge-demo-olga")
    parser.add_argument("--model", default="credit-risk")
    parser.add_argument("--version", default="1.1.0")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        login(page, base, args.engineer, args.engineer_password)
        shot(page, base, "/", "dashboard", wait_for=".stats")
        shot(page, base, "/registry/", "registry")
        twenty_days_ago = (datetime.now(UTC) - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
        shot(page, base, f"/registry/models/{args.model}/?alias=champion&at={twenty_days_ago}", "model_detail")
        shot(page, base, f"/registry/models/{args.model}/versions/{args.version}/", "version_detail")
        shot(page, base, f"/registry/models/{args.model}/upload/", "upload")
        shot(page, base, "/jobs/", "jobs")
        page.click("#job-table a.cell-title >> nth=0")
        page.wait_for_selector("#job-live")
        page.screenshot(path=str(OUT / "job_detail.png"), full_page=True)
        page.context.clear_cookies()
        shot(page, base, "/accounts/login/", "login", full_page=False)
        login(page, base, args.officer, args.officer_password)
        shot(page, base, "/audit/?object_type=models_registry.modelversion", "audit", full_page=False)
        mobile = browser.new_page(viewport={"width": 390, "height": 844})
        mobile.context.add_cookies(page.context.cookies())
        shot(mobile, base, "/registry/", "registry_mobile")
        browser.close()


if __name__ == "__main__":
    main()
