"""The chat page in a real browser (Debian's chromium, driven by Selenium) against the real
server over HTTP: streamed answers, citations that open their passage, upload, feedback,
delete, phone width, labels, and keys. Screenshots go to build/test-artifacts/browser/
(RAGQA_TEST_ARTIFACTS moves them). The generator is a scripted fake: this tests the page,
not the model."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server.live import serve

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(os.environ.get("RAGQA_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
ARTEFACTS /= "browser"
DIALOG_OPEN = "return document.getElementById('passage').open"
INSTALL = "Run make run to install ragqa and start the server."


class QuotingGenerator(FakeGenerator):
    """Answers with the sentence holding `needle` from the source that has it, citing that
    source and, when there is one, another that does not support it; streams slowly."""

    needle = "make run"
    delay = 0.08  # seconds per word: slow enough for the page to show the text growing

    def generate(self, messages: Sequence[Mapping[str, str]], **kwargs: Any) -> Any:
        prompt = "\n".join(m["content"] for m in messages)
        parts = re.split(r"(?m)^\[(\d+)\] ", prompt)
        blocks = dict(zip(parts[1::2], parts[2::2], strict=True))
        holder = next((n for n, text in blocks.items() if self.needle in text), None)
        if holder is None:
            self.enqueue("I do not know.")
        else:
            sentences = re.split(r"(?<=\.)\s+|\n", blocks[holder])
            sentence = next(s for s in sentences if self.needle in s)
            other = next((n for n in blocks if n != holder), None)
            cites = f"[{holder}]" + (f"[{other}]" if other else "")
            self.enqueue(f"{sentence.strip().rstrip('.')} {cites}.")
        return super().generate(messages, **kwargs)

    def stream(self, messages: Sequence[Mapping[str, str]], **kwargs: Any) -> Iterator[str]:
        for piece in super().stream(messages, **kwargs):
            time.sleep(self.delay)
            yield piece


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        reason = "needs Debian's chromium and chromium-driver (make setup installs them as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.implicitly_wait(0)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Any, what: str, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition, message=f"waiting for {what}")


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements("css selector", selector))


def shot(driver: Any, name: str) -> None:
    assert driver.save_screenshot(str(ARTEFACTS / f"{name}.png"))


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def unlabelled(driver: Any) -> list[str]:
    """Controls a screen reader could not name."""
    script = """return [...document.querySelectorAll('input, select, textarea, button')]
      .filter((e) => e.offsetParent !== null || e.closest('dialog[open]'))
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.textContent.trim())
      .map((e) => e.outerHTML);"""
    return list(driver.execute_script(script))


def ask(driver: Any, question: str) -> Any:
    """Type a question and press Enter; the new turn once its answer and thumbs are shown."""
    turns = len(css(driver, "#log .turn"))
    box = css(driver, "#question")[0]
    box.send_keys(question + "\n")
    wait_for(driver, lambda d: len(css(d, "#log .turn")) == turns + 1, "the new turn")
    turn = css(driver, "#log .turn")[-1]
    wait_for(driver, lambda d: turn.find_elements("css selector", ".feedback"), "the answer")
    return turn


def open_citation(driver: Any, button: Any) -> tuple[str, str]:
    """Click a citation; the passage dialog's title and highlighted text."""
    button.click()
    wait_for(driver, lambda d: d.execute_script(DIALOG_OPEN), "the passage dialog")
    title = css(driver, "#passage-title")[0].text
    marks = css(driver, "#passage-text mark")
    return title, marks[0].text if marks else ""


def close_dialog(driver: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    css(driver, "#passage-close")[0].send_keys(Keys.ESCAPE)
    wait_for(driver, lambda d: not d.execute_script(DIALOG_OPEN), "the dialog to close")


@pytest.fixture
def live(tmp_path: Path, make_settings: MakeSettings) -> Iterator[tuple[str, Services]]:
    settings = make_settings(home=tmp_path / "home", retrieval={"min_score": 0.0},
                             answers={"mode": "rag"})  # fmt: skip
    services = Services(settings, embedder=FakeEmbedder(), generator=QuotingGenerator())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "install.md").write_text(f"# Installing\n\n{INSTALL} It takes a minute.\n")
    (docs / "models.md").write_text("# Models\n\nThe default generator is SmolLM2.\n")
    services.ingestor.ingest([docs], collection=settings.collection)
    with serve(services) as base:
        yield base, services


# Every text the last answer shows, to see it grow while the answer streams.
RECORD_ANSWERS = """window.seen = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll('#log .answer');
    if (answers.length) window.seen.push(answers[answers.length - 1].textContent);
  }).observe(document.getElementById('log'),
             {subtree: true, childList: true, characterData: true});"""
# Elements reaching past the right edge of the screen.
TOO_WIDE = """const edge = document.documentElement.clientWidth;
  return [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > edge + 1)
    .map((e) => e.outerHTML.slice(0, 80));"""


def ask_and_open_citations(browser: Any) -> None:
    """A streamed answer whose supported citation opens its passage highlighted, and whose
    unsupported one is marked and warns in the passage."""
    browser.execute_script(RECORD_ANSWERS)
    turn = ask(browser, "How do I install ragqa?")
    answer = turn.find_element("css selector", ".answer").text
    assert answer.startswith("Run make run to install ragqa and start the server")
    seen = [t for t in browser.execute_script("return window.seen") if t.startswith("Run")]
    partial = {t for t in seen if len(t) < len("Run make run to install ragqa")}
    assert len(partial) >= 3, seen  # the text arrived word by word, not at once
    shot(browser, "02-streamed-answer")
    cites = turn.find_elements("css selector", ".answer .cite")
    supported = [c for c in cites if "unsupported" not in c.get_attribute("class")]
    unsupported = [c for c in cites if "unsupported" in c.get_attribute("class")]
    assert len(supported) == 1 and len(unsupported) == 1
    assert "does not support" in unsupported[0].get_attribute("aria-label")
    title, marked = open_citation(browser, supported[0])
    assert "install.md" in title and marked == INSTALL
    assert not css(browser, "#passage-warning")[0].is_displayed()
    shot(browser, "03-citation-opened")
    close_dialog(browser)
    open_citation(browser, unsupported[0])
    assert "does not support" in css(browser, "#passage-warning")[0].text
    close_dialog(browser)


def upload_and_ask(browser: Any, tmp_path: Path) -> Any:
    """Upload a file, see the report and the document, ask about it; its turn."""
    refunds = tmp_path / "refunds.md"
    refunds.write_text("# Refunds\n\nRefunds are paid within 14 days of a return.\n")
    css(browser, "#files")[0].send_keys(str(refunds))
    css(browser, "#upload")[0].click()
    wait_for(browser, lambda d: "1 added" in css(d, "#upload-status")[0].text, "the report")
    wait_for(browser, lambda d: "refunds.md" in css(d, "#documents")[0].text, "the listing")
    assert "3 documents" in css(browser, "#collection")[0].text
    shot(browser, "04-uploaded")
    QuotingGenerator.needle = "Refunds are"
    try:
        turn = ask(browser, "How long do refunds take?")
    finally:
        QuotingGenerator.needle = "make run"
    assert "14 days" in turn.find_element("css selector", ".answer").text
    title, marked = open_citation(browser, turn.find_elements("css selector", ".answer .cite")[0])
    assert "refunds.md" in title and "14 days" in marked
    close_dialog(browser)
    return turn


def rate_down_with_correction(browser: Any, turn: Any, services: Services) -> None:
    turn.find_element("css selector", ".rate.down").click()
    correction = turn.find_element("css selector", ".correction textarea")
    wait_for(browser, lambda d: correction.is_displayed(), "the correction box")
    correction.send_keys("Refunds take 14 days after the return arrives.")
    turn.find_element("css selector", ".correction button").click()
    wait_for(browser, lambda d: "with a correction" in turn.text, "the feedback receipt")
    [rated] = services.feedback.rated(rating="down")
    assert rated.question == "How long do refunds take?"
    assert rated.correction == "Refunds take 14 days after the return arrives."
    shot(browser, "05-feedback")


def stop_an_answer(browser: Any) -> None:
    """Stop shows while an answer streams; it ends the answer there, with no thumbs."""
    QuotingGenerator.delay = 0.5
    try:
        css(browser, "#question")[0].send_keys("How do I install ragqa?\n")
        wait_for(browser, lambda d: css(d, "#log .turn:last-child .answer.streaming"), "words")
        css(browser, "#stop")[0].click()
        wait_for(browser, lambda d: css(d, "#log .turn:last-child .answer.stopped"), "the stop")
    finally:
        QuotingGenerator.delay = 0.08
    turn = css(browser, "#log .turn")[-1]
    assert "(stopped)" in turn.text and not turn.find_elements("css selector", ".feedback")
    assert not css(browser, "#stop")[0].is_displayed()


def test_ask_cite_upload_rate_and_delete_in_a_real_browser(
    browser: Any, live: tuple[str, Services], tmp_path: Path
) -> None:
    base, services = live
    browser.get(base + "/")
    wait_for(browser, lambda d: "2 documents" in css(d, "#collection")[0].text, "the collections")
    assert "install.md" in css(browser, "#documents")[0].text
    shot(browser, "01-start")
    ask_and_open_citations(browser)
    turn = upload_and_ask(browser, tmp_path)
    rate_down_with_correction(browser, turn, services)
    stop_an_answer(browser)
    assert unlabelled(browser) == []

    # Phone width: nothing wider than the screen.
    browser.set_window_size(390, 844)
    assert browser.execute_script(TOO_WIDE) == []
    shot(browser, "06-phone")
    browser.set_window_size(1280, 900)

    # Delete the upload (writers see the button; the browser asks to confirm).
    rows = [r for r in css(browser, "#documents li") if "refunds.md" in r.text]
    rows[0].find_element("css selector", "button.delete").click()
    wait_for(browser, lambda d: d.switch_to.alert, "the confirmation").accept()
    wait_for(browser, lambda d: "refunds.md" not in css(d, "#documents")[0].text, "the deletion")
    assert len(services.index.documents(services.settings.collection)) == 2
    assert console_errors(browser) == []


def test_the_page_asks_for_a_key_only_when_one_is_needed(
    browser: Any, tmp_path: Path, make_settings: MakeSettings
) -> None:
    settings: Settings = make_settings(home=tmp_path / "home", server={"api_key": "x" * 32})
    services = Services(settings, embedder=FakeEmbedder(), generator=QuotingGenerator())
    _, reader = services.keys.create(name="staff", role="reader")
    with serve(services) as base:
        browser.get(base + "/")
        box = css(browser, "#apikey")[0]
        wait_for(browser, lambda d: box.is_displayed(), "the key box")
        assert not css(browser, "#upload-form")[0].is_displayed()
        shot(browser, "07-key-needed")
        box.send_keys(reader + "\t")
        wait_for(browser, lambda d: "reader" in css(d, "#whoami")[0].text, "the key to work")
        assert not css(browser, "#upload-form")[0].is_displayed()  # readers do not upload
        assert css(browser, "#documents button.delete") == []
    # The 401 that showed the key box is the only error the console may hold.
    errors = console_errors(browser)
    assert all("401" in message for message in errors), errors


PAYLOAD = (
    'Hostile markup <img src=x onerror="window.__pwned=1"> and '
    '<script>window.__pwned=2</script> and <b onmouseover="window.__pwned=3">bold</b>'
)


def test_markup_in_documents_and_answers_is_shown_as_text_never_run(
    browser: Any, tmp_path: Path, make_settings: MakeSettings
) -> None:
    """OWASP LLM05: a document's HTML, quoted by the model into its answer, in its file name
    and in its passage, is text on the page: no element is made from it, no script runs."""
    settings = make_settings(home=tmp_path / "home", retrieval={"min_score": 0.0},
                             answers={"mode": "rag"})  # fmt: skip
    services = Services(settings, embedder=FakeEmbedder(), generator=QuotingGenerator())
    docs = tmp_path / "docs"
    docs.mkdir()
    hostile = docs / '<img src=x onerror="window.__pwned=4">.txt'
    hostile.write_text(f"Setup notes.\n{PAYLOAD} make run now.\nMore notes.\n")
    services.ingestor.ingest([docs], collection=settings.collection)
    with serve(services) as base:
        browser.get(base + "/")
        wait_for(browser, lambda d: "1 document" in css(d, "#collection")[0].text, "the list")
        assert 'onerror="window.__pwned=4"' in css(browser, "#documents")[0].text
        turn = ask(browser, "What are the setup notes?")
        answer = turn.find_element("css selector", ".answer").text
        assert '<img src=x onerror="window.__pwned=1">' in answer, answer
        assert "<script>window.__pwned=2</script>" in answer
        title, _ = open_citation(browser, turn.find_elements("css selector", ".answer .cite")[0])
        assert "<img" in title
        assert "<script>" in css(browser, "#passage-text")[0].text
        shot(browser, "08-markup-as-text")
        made = browser.execute_script(
            "return [...document.querySelectorAll('#log *, #documents *, #passage *')]"
            ".filter((e) => ['IMG', 'SCRIPT', 'B'].includes(e.tagName)).length"
        )
        assert made == 0
        assert browser.execute_script("return window.__pwned") is None
    assert console_errors(browser) == []
