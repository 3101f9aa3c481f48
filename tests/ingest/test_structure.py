"""Section headings of markdown, reStructuredText and HTML."""

from __future__ import annotations

from ingest.structure import html_text, markdown_sections, rst_sections


def test_markdown_heading_paths_and_offsets() -> None:
    text = (
        "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n```\n# not a heading\n```\n\nSetup\n-----\n"
    )
    sections = markdown_sections(text)
    assert [title for _, title in sections] == ["Guide", "Guide > Install", "Guide > Setup"]
    for offset, title in sections:
        assert text[offset:].lstrip("# ").startswith(title.split(" > ")[-1])


def test_rst_levels_follow_adornment_order() -> None:
    text = (
        "=====\nTitle\n=====\n\nIntro.\n\nFirst\n-----\n\nBody.\n\nDeep\n~~~~\n\nx\n\n"
        "Second\n------\n"
    )
    titles = [title for _, title in rst_sections(text)]
    assert titles == ["Title", "Title > First", "Title > First > Deep", "Title > Second"]


def test_html_visible_text_and_headings() -> None:
    markup = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<h1>Debian&nbsp;FAQ</h1><p>Intro <b>bold</b> text.</p><script>var x=1;</script>"
        "<h2>1.1 What is it?</h2><p>A distribution.</p></body></html>"
    )
    text, sections = html_text(markup)
    assert "var x" not in text and "p{}" not in text
    assert "Intro bold text." in text
    assert [t for _, t in sections] == ["Debian FAQ", "Debian FAQ > 1.1 What is it?"]
    for offset, title in sections:
        assert text[offset:].startswith(title.split(" > ")[-1])


def test_html_tables_read_as_header_value_rows() -> None:
    markup = (
        "<h1>Ports</h1><p>Before.</p><table><caption>caption</caption>"
        "<thead><tr><th>service</th><th>port</th></tr></thead><tbody>"
        "<tr><td>api<script>var x=1;</script></td><td>8000<br>(TLS)</td></tr>"
        "<tr><td>chat <table><tr><td>inner</td></tr></table></td><td></td></tr>"
        "</tbody></table><h2>After</h2><p>Done.</p>"
    )
    text, sections = html_text(markup)
    assert text == (
        "Ports\n\nBefore.\n\ncaption\nservice: api; port: 8000 (TLS)\nservice: chat inner\n\n"
        "After\n\nDone."
    )
    assert [t for _, t in sections] == ["Ports", "Ports > After"]
    for offset, title in sections:
        assert text[offset:].startswith(title.split(" > ")[-1])
