"""The arena's report: report.json, and report.html with its charts inside (matplotlib PNGs as
data URIs), so it opens from disk with no network and no other file."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_COLUMNS = ("token_f1", "exact_match", "containment", "written_citation_rate",
            "citation_precision", "unanswerable_refused", "answerable_refused",
            "latency_p50_s", "latency_p95_s", "tokens_in", "tokens_out")  # fmt: skip


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def charts(table: dict[str, dict[str, float]], intervals: dict[str, tuple[float, float]],
           rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:  # fmt: skip
    """(title, PNG data URI) of each chart."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    modes = list(table)
    made = []
    figure, axes = plt.subplots(figsize=(7, 3.2))
    means = [table[m]["token_f1"] for m in modes]
    below = [max(0.0, mean - intervals[m][0]) for m, mean in zip(modes, means, strict=True)]
    above = [max(0.0, intervals[m][1] - mean) for m, mean in zip(modes, means, strict=True)]
    errors = [below, above]
    axes.bar(modes, means, yerr=errors, capsize=4, color="#3556a8")
    axes.set_ylabel("token F1 (95% CI)")
    axes.set_ylim(0, 1)
    made.append(("Token F1 per mode", _png(figure)))
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(7, 3.2))
    width = 0.38
    xs = range(len(modes))
    axes.bar([x - width / 2 for x in xs], [table[m]["unanswerable_refused"] for m in modes],
             width, label="unanswerable refused (higher is better)", color="#2b8a3e")  # fmt: skip
    axes.bar([x + width / 2 for x in xs], [table[m]["answerable_refused"] for m in modes],
             width, label="answerable refused (lower is better)", color="#d9822b")  # fmt: skip
    axes.set_xticks(list(xs), modes)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=8)
    made.append(("Refusals", _png(figure)))
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(7, 3.2))
    axes.boxplot([[r["seconds"] for r in rows if r["mode"] == m] or [0.0] for m in modes],
                 tick_labels=modes)  # fmt: skip
    axes.set_ylabel("seconds per answer")
    made.append(("Latency", _png(figure)))
    plt.close(figure)
    return made


def write_report(folder: Path, report: dict[str, Any], rows: Sequence[dict[str, Any]],
                 intervals: dict[str, tuple[float, float]]) -> tuple[Path, Path]:  # fmt: skip
    """report.json and report.html in `folder`."""
    json_path, html_path = folder / "report.json", folder / "report.html"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    esc = html.escape
    table = report["modes"]
    head = "".join(f"<th>{esc(c)}</th>" for c in ("mode", *_COLUMNS))
    body = "".join(
        "<tr><td>" + esc(m) + "</td>" + "".join(f"<td>{table[m][c]:.3f}</td>" for c in _COLUMNS)
        + "</tr>" for m in table
    )  # fmt: skip
    pairs = "".join(
        f"<tr><td>{esc(p['a'])} − {esc(p['b'])}</td><td>{p['f1_difference']:+.3f}</td>"
        f"<td>[{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}]</td><td>{p['questions']}</td>"
        f"<td>{'yes' if p['significant'] else 'no'}</td></tr>"
        for p in report["pairs"]
    )
    figures = "".join(
        f"<figure><img alt='{esc(t)}' src='{uri}'><figcaption>{esc(t)}</figcaption></figure>"
        for t, uri in charts(table, intervals, rows)
    )
    modes = list(table)
    questions = "".join(
        f"<tr><td>{esc(q['question'])}</td><td>{esc(q['gold'])}</td>"
        + "".join(
            f"<td class='{'refused' if a.get('refused') else ''}'>{esc(a.get('answer', ''))}"
            f"<br><small>F1 {a.get('f1', 0):.2f}</small></td>"
            for a in (q["answers"].get(m, {}) for m in modes)
        ) + "</tr>" for q in report["questions"]
    )  # fmt: skip
    setting = esc(json.dumps(report["setting"], ensure_ascii=False))
    html_path.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragqa compare</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1d2330}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccd;padding:.3rem .5rem;
vertical-align:top;font-size:.9rem}}th{{background:#eef1f7}}.refused{{color:#8a5a00}}
figure{{display:inline-block;margin:.5rem}}</style></head><body>
<h1>ragqa compare</h1><p><code>{setting}</code></p>
<h2>Per mode</h2><table><tr>{head}</tr>{body}</table>
<h2>Differences in token F1 (paired bootstrap, 95%)</h2>
<table><tr><th>pair</th><th>difference</th><th>95% interval</th><th>questions</th>
<th>significant</th></tr>{pairs}</table>
<h2>Charts</h2>{figures}
<h2>Question by question</h2><table><tr><th>question</th><th>gold</th>
{"".join(f"<th>{esc(m)}</th>" for m in modes)}</tr>{questions}</table>
</body></html>
""",
        encoding="utf-8",
    )
    return json_path, html_path
