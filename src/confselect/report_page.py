"""The report page, ``results/report/index.html``: one self-contained file (figures inlined, no external
link or script), opening with the verdict, then the figures and the tables, readable offline in a browser."""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right; }
th { background: #eee; }
section.verdict { border: 2px solid #446; padding: 0 1em; margin-bottom: 2em; }
figure { margin: 2em 0; } figure img { max-width: 100%; } figcaption { font-size: 0.9em; color: #444; }
.scroll { overflow-x: auto; }
"""


def render_page(verdict_md: str, figures, tables, title: str = "confselect report") -> str:
    """HTML of the page: ``figures`` are ``(title, png_path, caption)``, ``tables`` ``(title, csv_path)``."""
    import markdown
    import pandas as pd

    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<section class='verdict' id='verdict'>{markdown.markdown(verdict_md, extensions=['tables'])}</section>",
             "<h1>Figures</h1>"]
    for name, png, caption in figures:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        parts.append(f"<figure id='{html.escape(Path(png).stem)}'><h2>{html.escape(name)}</h2>"
                     f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h1>Tables</h1>")
    for name, csv in tables:
        try:
            frame = pd.read_csv(csv)
        except pd.errors.EmptyDataError:  # e.g. no model ran NVT through: no transport rows
            frame = pd.DataFrame()
        table = frame.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="", border=0) \
            if len(frame.columns) else "<p>(no rows in this run)</p>"
        parts.append(f"<h2 id='{html.escape(Path(csv).stem)}'>{html.escape(name)} "
                     f"(<code>{html.escape(Path(csv).name)}</code>)</h2><div class='scroll'>{table}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path, verdict_md_path, figures, tables, more_md=()) -> None:
    """The page: the verdict and the markdown files ``more_md`` (the pool comparison) first, in order."""
    text = "\n\n".join(Path(p).read_text() for p in (verdict_md_path, *more_md))
    Path(path).write_text(render_page(text, figures, tables))
