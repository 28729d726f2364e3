"""Browser benchmark: *Join online classroom* click → first remote video frame, Chromium, loopback.

    python -m bench.browser [--runs 5]

One `classroom serve` process (``CLASSROOM_MEDIA_LOOPBACK=true``, a fresh SQLite database seeded
with one two-person session per run) and Debian's Chromium driven by Playwright (fake camera and
microphone, as tests/e2e). Per run, in fresh browser contexts: the tutor opens the session and
clicks *Start session* (in the classroom); the student opens it, a poller in the student's page
reads ``window.classroomMedia.videoStats()`` every 25 ms, and the time is taken from the click
(``Date.now()`` in the page just before it) to the poll that first sees ``framesDecoded > 0`` for
the tutor's video. Median over runs; bench/results/browser-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_async

from bench.classroom_servers import SECRET, seed
from bench.harness import LOGS, ROOT, free_port, median, spawn, table, wait_http, write_result
from tests.e2e.conftest import CHROMIUM_ARGS

expect = playwright_async.expect

POLLER = """(tutorId) => {
  window.__firstFrameAt = null;
  const poll = async () => {
    const media = window.classroomMedia;
    if (media) {
      const stats = await media.videoStats();
      if (stats.some((s) => s.userId === tutorId && s.framesDecoded > 0)) {
        window.__firstFrameAt = Date.now();
        return;
      }
    }
    setTimeout(poll, 25);
  };
  poll();
}"""


async def one(browser: Any, url: str, session: dict[str, str]) -> dict[str, Any]:
    fragment = f"#/sessions/{session['id']}"
    contexts = []
    try:
        pages = {}
        for who in ("tutor", "student"):
            context = await browser.new_context(
                viewport={"width": 1280, "height": 820}, permissions=["camera", "microphone"]
            )
            context.set_default_timeout(15_000)
            contexts.append(context)
            page = await context.new_page()
            await page.goto(f"{url}/?token={session[who + '_token']}{fragment}")
            await expect(page.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
            pages[who] = page
        tutor, student = pages["tutor"], pages["student"]
        await tutor.get_by_role("button", name="Start session").click()
        await expect(tutor.get_by_role("button", name="Leave")).to_be_visible()

        await student.evaluate(POLLER, session["tutor_id"])
        clicked = await student.evaluate("Date.now()")
        await student.get_by_role("button", name="Join online classroom").click()
        await student.wait_for_function("window.__firstFrameAt !== null", timeout=15_000)
        first = await student.evaluate("window.__firstFrameAt")
        return {"click_to_first_frame_s": (first - clicked) / 1000}
    finally:
        for context in contexts:
            await context.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("bench: Debian's chromium is not installed (scripts/setup.sh --browser)")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as name:
        tmp = Path(name)
        url_db = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        sessions = await seed(url_db, args.runs)
        port = free_port()
        env = {
            "CLASSROOM_DATABASE_URL": url_db,
            "CLASSROOM_JWT_SECRET": SECRET,
            "CLASSROOM_MAIL_DIR": str(tmp / "mail"),
            "CLASSROOM_MEDIA_LOOPBACK": "true",
            "CLASSROOM_LOG_LEVEL": "WARNING",
        }
        argv = [str(ROOT / ".venv/bin/classroom"), "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port)]
        async with spawn("classroom", argv, env=env, stderr_to=LOGS / "browser-server.log"):
            await wait_http(port)
            url = f"http://127.0.0.1:{port}"
            async with playwright_async.async_playwright() as p:
                browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                try:
                    for index, session in enumerate(sessions):
                        started = time.monotonic()
                        record = await asyncio.wait_for(one(browser, url, session), 60)
                        record["load_average_1m"] = round(os.getloadavg()[0], 2)
                        record["run_s"] = time.monotonic() - started
                        runs.append(record)
                        print(f"run {index + 1}: {record}", flush=True)
                finally:
                    await browser.close()
    times = [r["click_to_first_frame_s"] for r in runs]
    return {
        "runs": runs,
        "median": {"click_to_first_frame_s": median(times), "min": min(times), "max": max(times)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = asyncio.run(run(args))
    m = data["median"]
    print()
    print(
        table(
            f"browser: click → first remote video frame, medians of {args.runs} runs",
            ["figure", "median s", "min s", "max s"],
            [
                [
                    "Join online classroom → framesDecoded > 0",
                    *(f"{m[k]:.2f}" for k in ("click_to_first_frame_s", "min", "max")),
                ]
            ],
        )
    )
    print(f"\nwrote {write_result('browser', data)}")


if __name__ == "__main__":
    main()
