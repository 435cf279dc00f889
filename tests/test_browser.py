"""The browser checks of tests/browser.py catch what they are for: a small hand-made book with
one clean page and one page per defect, opened in Debian's Chromium like the smoke book."""
import importlib
from pathlib import Path

from PIL import Image

import browser

MATHJAX = Path(importlib.import_module("sphinx-mathjax-offline").__file__).parent / "static" / "mathjax"
HEAD = '<html><head><script defer src="_static/mathjax/tex-chtml.js"></script></head><body>'
NO_MATHJAX = "<html><body>"  # as a page whose MathJax did not load


def download(href: str) -> str:
    """A `{download}` role as Sphinx renders it when it found the file."""
    return f'<a class="reference download internal" download="" href="{href}"><code class="xref download">{href}</code></a>'


PAGES = {
    "clean.html": '<p>Inline <span class="math">\\(x^2\\)</span>, then</p><div class="math">\\[y = 1\\]</div>'
                  '<p>A glued <span class="pasted-text">0.500</span>, as in nanoGPT.</p><div class="cell_output"><figure>'
                  '<img src="figure.png" alt="A teal square."><figcaption><span class="caption-number">Fig. 1 '
                  '</span></figcaption></figure></div>'
                  '<p id="here"><a href="clean.html#here">here</a>, <a href="https://example.org">out</a>, '
                  '<code>$HOME and \\(code\\)</code></p>'
                  f'<p>{download("_downloads/0a/table.csv")}</p><table><tr><th>a</th></tr><tr><td>0.5</td></tr></table>',
    "traceback.html": '<div class="output traceback"><pre>Traceback (most recent call last):\n  ...</pre></div>'
                      '<script>notAFunction()</script>',
    "image.html": '<img src="_images/missing.png">',
    "links.html": '<a href="nowhere.html">a</a> <a href="clean.html#no-such-id">b</a>',
    "glue.html": "<p>Glued <span class=\"pasted-text\">'beats'</span>; raw {glue:text}`key` here.</p>",
    "math.html": '<p>Untypeset <span class="math">\\(N\\)</span> and a raw $$z$$.</p>',
    "tall.html": f'<div style="height: {browser.MAX_PAGE_HEIGHT + 1000}px">tall</div>',
    "download.html": f'<p>{download("_downloads/0b/gone.csv")} and <code class="xref download">cut.csv</code></p>',
    "logs.html": "<pre>{'loss': '4.463', 'grad_norm': '1.84'}\n{'loss': '4.452', 'grad_norm': '1.8'}</pre>",
    "wide.html": '<table><tr><th>wide</th></tr><tr><td style="min-width: 3000px">1</td></tr></table>',
    "nan.html": '<p>IDK-IT refuses <span class="pasted-text">nan</span> of them.</p>',
    "nan_table.html": '<table><tr><th>over-refusal</th></tr><tr><td>NaN</td></tr></table>',
    "figure.html": '<div class="cell_output"><img src="figure.png"></div><div class="cell_output"><figure>'
                   '<img src="figure.png" alt="A teal square."><figcaption><span class="caption-number">Fig. 1 '
                   '</span></figcaption></figure></div>',
    "network.html": '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>',
}
SOURCES = {"clean.md": "A glued {glue:text}`key:.3f`.", "glue.md": "{glue:text}`a` and {glue:text}`b`"}
EXPECTED = {
    "traceback.html": ["error output on the page", "a Python traceback", "browser error: notAFunction"],
    "image.html": ["image does not load", "fails to load"],
    "links.html": ["link to a missing file: nowhere.html", "link to a missing anchor: clean.html#no-such-id"],
    "glue.html": ["glue syntax shown as text", "2 {glue:text} roles in the source but 1 pasted",
                  "Python repr or nothing: \"'beats'\""],
    "math.html": ["math not typeset by MathJax: '\\\\(N\\\\)'", "raw math markup in the text: '$$z$$'"],
    "tall.html": ["px tall at 1280 px wide"],
    "network.html": ["needs the network: https://cdn.jsdelivr.net"],
    "download.html": ["link to a missing file: _downloads/0b/gone.csv", "download with no file behind it: 'cut.csv'"],
    "wide.html": ["table 'wide' is 30"],
    "nan.html": ["printed as nan: 'IDK-IT refuses nan of them.'"],
    "nan_table.html": ["printed as nan: 'over-refusal NaN'"],
    "logs.html": ["2 training log line(s) in the page"],
    "figure.html": ["figure without alt text: ", "figure without a number: "],
}


def test_browser_checks_pass_a_clean_page_and_name_each_defect(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "mathjax").symlink_to(MATHJAX)
    (tmp_path / "_sources").mkdir()
    for name, text in SOURCES.items():
        (tmp_path / "_sources" / name).write_text(text)
    Image.new("RGB", (20, 10), "teal").save(tmp_path / "figure.png")
    (tmp_path / "_downloads" / "0a").mkdir(parents=True)
    (tmp_path / "_downloads" / "0a" / "table.csv").write_text("a\n0.5\n")
    for name, body in PAGES.items():
        (tmp_path / name).write_text((NO_MATHJAX if name == "math.html" else HEAD) + body + "</body></html>")
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=gone.html" />')

    problems, views = browser.check_book(tmp_path, screenshot={"clean.html": tmp_path / "clean.png"})

    assert "clean.html" not in problems, browser.report(problems)
    assert views["clean.html"].math == 2 and (tmp_path / "clean.png").stat().st_size > 0
    assert problems["index.html"] == ["redirects to a missing page: gone.html"]
    for page, expected in EXPECTED.items():
        found = "\n".join(problems.get(page, []))
        assert all(e in found for e in expected), f"{page}: expected {expected}, found:\n{found}"
