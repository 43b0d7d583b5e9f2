"""The book: builds offline with no warnings (-W -n), keeps solutions collapsed and hidden tests
off the page, and its sliders respond in headless Chromium with no kernel and no request
leaving the machine."""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from autograde import course
from autograde.course import SOLUTION_MARKERS
from conftest import REPO, require_command
from nnopt.exercises import exercises_of

pytestmark = pytest.mark.xdist_group("book")  # its tests share one session fixture: one worker runs them all

REPOSITORY = "https://github.com/example-org/nnopt-course"
TERM_HTML = REPO / "_build" / "term" / "_build" / "html"

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


def test_this_module_runs_on_one_worker(request):
    """Its session fixtures (the book, the term edition) are built once: by the worker that runs its group."""
    if getattr(request.config.option, "loadgroup", False):  # an xdist worker under --dist loadgroup
        assert request.node.nodeid.endswith("@book"), request.node.nodeid


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



def open_page(playwright, url):
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
    tab = browser.new_page(viewport={"width": 1300, "height": 1000})
    tab.goto(url, wait_until="load")
    return browser, tab


def solution_lines(chapter):
    """The lines of a chapter's solutions that its student edition does not have (whole lines, stripped)."""
    student = {line.strip() for line in _notebook_lines(course.CHAPTERS / chapter / f"{chapter}.ipynb")}
    lines = set()
    for cell in course.load_source(chapter)["cells"]:
        if course.is_answer(cell):
            body = course.text(cell).split(SOLUTION_MARKERS[0])[1].split(SOLUTION_MARKERS[1])[0]
            lines |= {line.strip() for line in body.splitlines() if len(line.strip()) >= 8}
    return lines - student


def _notebook_lines(path):
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    return [line.strip() for cell in notebook["cells"] for line in course.text(cell).splitlines()]


def code_lines(path):
    """The lines of code a built file shows or holds: a page's code blocks, a notebook's cells, a text file."""
    from bs4 import BeautifulSoup

    if path.suffix == ".ipynb":
        return set(_notebook_lines(path))
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".html":
        blocks = BeautifulSoup(text, "html.parser").select("div.highlight pre")
        return {line.strip() for block in blocks for line in block.get_text().splitlines()}
    return {line.strip() for line in text.splitlines()}


@pytest.mark.parametrize("chapter", course.chapters())
def test_a_chapter_page_leads_to_its_student_edition(server, chapter):
    """Follow the page's "student edition" link in the browser: the download is the exercises, not the solutions."""
    require_command("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, tab = open_page(playwright, server + page(chapter))
        try:
            link = tab.get_by_text("student edition of this chapter")
            with tab.expect_download() as download:
                link.click()
            notebook = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
            button = tab.locator(".btn-download-exercises-button")
            assert button.count() == 1 and button.get_attribute("href") == link.locator("xpath=..").get_attribute("href")
        finally:
            browser.close()
    source = "".join(course.text(cell) for cell in notebook["cells"])
    assert source.count("raise NotImplementedError") == len(exercises_of(chapter))
    lines = {line.strip() for line in source.splitlines()}
    assert "BEGIN SOLUTION" not in source and not lines & solution_lines(chapter)
    assert notebook["cells"][1]["id"] == course.SETUP_CELL_ID


def test_without_a_repository_address_the_book_shows_no_repository_or_launch_buttons(book):
    for chapter in course.chapters():
        html = (HTML / page(chapter)).read_text(encoding="utf-8")
        assert "launch-buttons" not in html and "repository-button" not in html
        assert "colab.research.google.com" not in html and "mybinder.org" not in html


@pytest.fixture(scope="session")
def term_book(book, tmp_path_factory):
    """`./course book --without-solutions`, with the repository's address set (the other setting)."""
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    config["repository"]["url"] = REPOSITORY
    config["sphinx"]["local_extensions"] = {"course_book": str(REPO / "book" / "_ext")}
    path = tmp_path_factory.mktemp("term") / "_config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [str(REPO / "course"), "book", "--without-solutions", "--config", str(path)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)


def test_term_edition_builds_and_has_no_solution_code(term_book):
    output = term_book.stdout + term_book.stderr
    assert term_book.returncode == 0 and "build succeeded" in output, output[-4000:]
    assert not (TERM_HTML / "_sources").exists()
    files = [path for path in TERM_HTML.rglob("*") if path.is_file() and path.suffix in (".html", ".ipynb", ".txt", ".md", ".py")]
    shown = {path: code_lines(path) for path in files}
    for chapter in course.chapters():
        html = (TERM_HTML / page(chapter)).read_text(encoding="utf-8")
        assert "Show solution" not in html and "leaves the solutions out" in html
        assert f"check</span><span class=\"p\">(</span><span class=\"n\">{exercises_of(chapter)[0].name}" in html
        solutions = solution_lines(chapter)
        assert solutions and solutions <= code_lines(HTML / page(chapter)), "the full book shows them: the check can see them"
        found = {str(path.relative_to(TERM_HTML)): sorted(lines & solutions) for path, lines in shown.items() if lines & solutions}
        assert found == {}, f"solution code in the term edition: {found}"


@pytest.mark.parametrize("chapter", course.chapters())
def test_with_a_repository_address_launch_buttons_open_the_student_edition(term_book, chapter):
    html = (TERM_HTML / page(chapter)).read_text(encoding="utf-8")
    student = f"chapters/{chapter}/{chapter}.ipynb"
    links = course.launch_links(REPOSITORY, "main", chapter)
    assert html.count(links["colab"]) == 2 and links["binder"] in html  # the launch button, and the note's links
    assert f"urlpath=lab/tree/{student}" in html and f"solutions/{chapter}/{chapter}.ipynb" not in html
    assert "btn-source-repository-button" in html and REPOSITORY in html
