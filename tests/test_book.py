"""The book: builds offline with no warnings (-W -n), keeps solutions collapsed and hidden tests
off the page, and its sliders respond in headless Chromium with no kernel and no request
leaving the machine."""

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograde import course
from conftest import REPO, require_command
from nnopt.exercises import exercises_of

HTML = REPO / "_build" / "html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def page(chapter):
    return f"solutions/{chapter}/{chapter}.html"


@pytest.fixture(scope="session")
def book():
    """Build the book the way the README's book command does (cached execution makes rebuilds fast)."""
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", ".", "-W", "-n", "--keep-going"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
    return result


def test_book_builds_without_warnings(book):
    output = book.stdout + book.stderr
    assert book.returncode == 0, output[-4000:]
    assert "build succeeded" in output
    assert not re.search(r"WARNING:", output), output[-4000:]  # Sphinx warnings; -W makes them errors too


@pytest.mark.parametrize("chapter", course.chapters())
def test_solutions_are_collapsed_and_hidden_tests_are_off_the_page(book, chapter):
    html = (HTML / page(chapter)).read_text(encoding="utf-8")
    assert "hidden_test(" not in html and "HIDDEN TESTS" not in html
    assert "BEGIN SOLUTION" not in html
    assert html.count("Show solution") == len(exercises_of(chapter))
    for exercise in exercises_of(chapter):
        assert f"check</span><span class=\"p\">(</span><span class=\"n\">{exercise.name}" in html


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(book):
    handler = functools.partial(QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.mark.parametrize("chapter", course.chapters())
def test_slider_changes_the_picture_offline(server, chapter):
    require_command("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            tab = browser.new_page(viewport={"width": 1300, "height": 1000})
            tab.on("request", lambda request: requests.append(request.url))
            tab.goto(server + page(chapter), wait_until="load")
            tab.wait_for_selector(".widget-slider", timeout=30_000)
            tab.wait_for_selector("mjx-container", state="attached", timeout=30_000)  # MathJax, served by the book
            widget = tab.locator(".widget-vbox").first
            widget.scroll_into_view_if_needed()
            picture = widget.locator("img").first
            before = picture.screenshot()
            widget.locator(".widget-slider .noUi-handle").first.focus()
            tab.keyboard.press("ArrowRight")
            tab.wait_for_timeout(500)
            after = widget.locator("img").first.screenshot()
        finally:
            browser.close()
    assert before != after, "moving the slider did not change the picture"
    leaving = [url for url in requests if not url.startswith((server, "data:", "blob:" + server[:-1]))]
    assert leaving == []

