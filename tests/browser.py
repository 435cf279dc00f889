"""A built book as a reader's browser shows it: headless Chromium checks every page.

Debian's `chromium` (never a browser download), driven by Playwright, opens each page of a built
book from its files (file://, as the README tells a reader to open it) with the network switched
off, so a page that needs the network (a CDN's MathJax, a web font) fails here as it would for a
reader offline. Each check below takes what the browser saw on one page (`PageView`) and returns
its problems as sentences that say what to fix; `check_book` runs them all on every page.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from playwright.sync_api import sync_playwright

# INBOL_CHROMIUM points at another Chromium (e.g. on a machine without Debian's package).
CHROMIUM = Path(os.environ.get("INBOL_CHROMIUM", "/usr/bin/chromium"))
# Playwright gives each launch a fresh temporary profile (its own --user-data-dir).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
# Page height at 1280 px wide. A chapter should read in one sitting: the tallest page, chapter 4,
# measured 13,000 px in the default book and 13,900-15,200 px in the smoke book (2026-11-28; about
# 18 screens of 800 px). 25,000 px leaves room for the chapter to grow (code shown with
# literalinclude, exercises) while a page that prints training logs or long raw tables fails
# (chapter 4 was over 40,000 px with its per-step loss tables).
MAX_PAGE_HEIGHT = 25_000
# Loading a page, MathJax typesetting it and its images decoding take seconds on a busy 2-core
# machine; only a page that hangs reaches this.
TIMEOUT_MS = 60_000
# Browser errors of the pinned theme stack itself, the same on every Jupyter Book 1 page, that
# change nothing a reader sees: sphinx-thebe's inline settings script is added twice under
# Sphinx 7.4, so its second `const` fails (thebe is unused: the book has no launch buttons); and
# pydata-sphinx-theme logs an empty colour mode on the first page of a fresh browser profile.
THEME_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode: .")

# Text in these elements is code or rendered math, not prose: it may hold `$` or `\(` rightly.
# Formulas (.math) are checked on their own: typeset or not.
_NOT_PROSE = "pre, code, script, style, textarea, .highlight, .math, mjx-container"
_SNAPSHOT_JS = """async (notProse) => {
  const math = [...document.querySelectorAll('span.math, div.math')];
  if (math.length && window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = [...document.images];
  await Promise.all(images.map(img => { img.loading = 'eager'; return img.decode().catch(() => null); }));
  const prose = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !parent.closest(notProse)) prose.push(walker.currentNode.textContent);
  }
  return {
    height: document.documentElement.scrollHeight,
    prose: prose.join(' '),  // one text node from the next: a table cell's "NaN" stays a word
    text: document.body.innerText,
    errorOutputs: [...document.querySelectorAll('.output.traceback, .output.stderr, .system-message')]
      .map(e => e.className + ': ' + e.textContent.trim().slice(0, 120)),
    images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth, alt: img.alt.trim(),
      output: !!img.closest('.cell_output'),
      number: (img.closest('figure')?.querySelector('.caption-number')?.textContent || '').trim()})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    math: math.length,
    mathUnrendered: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    glue: [...document.querySelectorAll('span.pasted-text')].map(e => e.textContent),
    // Sphinx renders a {download} role whose file it could not copy as code with no link.
    downloadsUnlinked: [...document.querySelectorAll('code.download')].filter(e => !e.closest('a[href]'))
      .map(e => e.textContent.trim()),
    wideTables: [...document.querySelectorAll('table')].map(table => {
      const column = table.closest('article') || document.body;
      const style = getComputedStyle(column);
      const width = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      const head = [...(table.rows[0] ? table.rows[0].cells : [])].map(c => c.textContent.trim()).filter(t => t);
      return {width: Math.round(table.getBoundingClientRect().width), column: Math.floor(width),
              head: head.join(' | ').slice(0, 80)};
    }).filter(t => t.width > t.column),
  };
}"""


@dataclass
class PageView:
    """What the browser saw on one page, after MathJax and every image had their chance."""
    name: str  # path relative to the book's html root, e.g. "book/executed/04_evaluation.html"
    height: int
    prose: str  # text outside code and formulas
    text: str  # all of the page's text, code and outputs included
    error_outputs: list[str]
    images: list[dict]
    links: list[str]
    ids: set[str]
    math: int
    math_unrendered: list[str]
    glue: list[str]
    glue_roles: int  # `{glue:text}` roles in the page's source
    downloads_unlinked: list[str] = field(default_factory=list)  # `{download}` roles with no file
    wide_tables: list[dict] = field(default_factory=list)  # tables wider than the text column
    browser_errors: list[str] = field(default_factory=list)  # uncaught JS errors, console errors
    failed: list[str] = field(default_factory=list)  # requests that failed: "url (reason)"


def error_output(view: PageView) -> list[str]:
    found = [f"error output on the page ({e})" for e in view.error_outputs]
    if "Traceback (most recent call last)" in view.text:
        found.append("a Python traceback in the page's text")
    found += [f"browser error: {e}" for e in view.browser_errors
              if not e.startswith(THEME_NOISE) and not e.startswith("Failed to load resource")]
    return found  # (a resource that failed to load is reported by failed_requests, with its url)


def training_logs(view: PageView) -> list[str]:
    """Trainer's per-step log lines ({'loss': ...}) printed into a chapter: the curves are figures."""
    found = len(re.findall(r"\{'loss': ", view.text))
    return [f"{found} training log line(s) in the page ({{'loss': ...}}): a job run in the kernel "
            "printed them (parallel.run keeps jobs' output out of the notebook)"] if found else []


def broken_images(view: PageView) -> list[str]:
    return [f"image does not load: {img['src']}" for img in view.images if img["width"] == 0]


def figures_without_alt_or_number(view: PageView) -> list[str]:
    """A figure a notebook draws is a numbered figure with alt text saying what it shows (its
    cell's `mystnb` metadata): a reader who cannot see it, or who cites it, needs both."""
    found = []
    for img in view.images:
        if img["output"] and not img["alt"]:
            found.append(f"figure without alt text: {img['src'][-60:]}")
        if img["output"] and not img["number"]:
            found.append(f"figure without a number: {img['alt'][:60] or img['src'][-60:]}")
    return found


def unrendered_glue(view: PageView) -> list[str]:
    """myst-nb renders a `{glue:text}` role whose key is missing as nothing at all (the warning
    is dropped from the page), so the page must hold one pasted value per role of its source."""
    found = []
    if "{glue" in view.prose:
        found.append("glue syntax shown as text (a `{glue...}` role or directive was not parsed)")
    if len(view.glue) != view.glue_roles:
        found.append(f"{view.glue_roles} {{glue:text}} roles in the source but {len(view.glue)} "
                     "pasted values on the page (a glue key missing from the executed notebook?)")
    found += [f"glued value shows as a Python repr or nothing: {text!r}" for text in view.glue
              if not text.strip() or re.match(r"""^(['"]).*\1$|^np\.|.* object at 0x""", text)]
    return found


# Formula markup left in the text: a whole $$...$$, $...$, \(...\) or \[...\], else a lone `$`
# or a LaTeX command (dollarmath did not parse it, or it sits where MathJax does not look).
_RAW_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\$|\\[A-Za-z]+", re.DOTALL)


def unrendered_math(view: PageView) -> list[str]:
    found = [f"math not typeset by MathJax: {text!r}" for text in view.math_unrendered[:5]]
    if len(view.math_unrendered) > 5:
        found.append(f"... {len(view.math_unrendered) - 5} more formulas not typeset")
    raw = list(dict.fromkeys(m.group() for m in _RAW_MATH.finditer(view.prose)))
    found += [f"raw math markup in the text: {text!r}" for text in raw[:5]]
    return found


def too_tall(view: PageView) -> list[str]:
    if view.height <= MAX_PAGE_HEIGHT:
        return []
    return [f"page is {view.height} px tall at {VIEWPORT['width']} px wide (limit {MAX_PAGE_HEIGHT}): "
            "move logs or long tables out of the page (CSV downloads, hidden cells)"]


def failed_requests(view: PageView) -> list[str]:
    """A script, style sheet, font or image the page loads must be a file of the build."""
    return [f"{'needs the network' if 'INTERNET_DISCONNECTED' in f else 'fails to load'}: {f}"
            for f in view.failed]


def unlinked_downloads(view: PageView) -> list[str]:
    """A `{download}` role whose file Sphinx could not find renders as plain code (a strict
    build stops on it; a lenient one does not). The links that did render are checked, like
    every internal link, by `broken_links`."""
    return [f"download with no file behind it: {text!r} (did the runner copy results/ beside the "
            "chapters?)" for text in view.downloads_unlinked]


def too_wide(view: PageView) -> list[str]:
    """A table wider than the text column is cut off or scrolls sideways inside its box: show
    fewer, rounder or transposed columns, and link the full table as a CSV download."""
    return [f"table {t['head']!r} is {t['width']} px wide in a {t['column']} px column "
            f"(at {VIEWPORT['width']} px)" for t in view.wide_tables]


def missing_numbers(view: PageView) -> list[str]:
    """"nan" in prose or a table: a sentence or cell that quotes a number this run does not have
    (a source without the ground truth, an ablation not run) must say so in words instead."""
    prose = " ".join(view.prose.split())
    found = list(dict.fromkeys(m.group() for m in re.finditer(r".{0,50}\bnan\b.{0,30}", prose, re.I)))
    return [f"a missing number printed as nan: {text!r}" for text in found]


PAGE_CHECKS = (error_output, training_logs, broken_images, figures_without_alt_or_number, unrendered_glue, unrendered_math, too_tall, failed_requests,
               unlinked_downloads, too_wide, missing_numbers)


def broken_links(views: dict[str, PageView], root: Path) -> dict[str, list[str]]:
    """Internal links must name a file of the build and, with a #fragment, an id on that page."""
    found: dict[str, list[str]] = {}
    for view in views.values():
        for href in sorted(set(view.links)):
            parts = urlsplit(href)
            if parts.scheme != "file":
                continue  # external (repository, paper): not reachable offline, not checked
            path = Path(unquote(parts.path))
            path = path / "index.html" if path.is_dir() else path
            target = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            if not path.is_relative_to(root) or not path.is_file():
                found.setdefault(view.name, []).append(f"link to a missing file: {target}")
            elif parts.fragment and target in views and unquote(parts.fragment) not in views[target].ids:
                found.setdefault(view.name, []).append(f"link to a missing anchor: {target}#{parts.fragment}")
    return found


_REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.IGNORECASE)


def book_pages(root: Path) -> list[str]:
    """Every HTML page of a built book: not the theme's templates under _static/, nor redirects
    (Jupyter Book's index.html only sends the browser on to the root page)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html")
                  if not p.relative_to(root).parts[0].startswith("_") and not _REDIRECT.search(p.read_text()))


def broken_redirects(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in root.glob("*.html"):
        match = _REDIRECT.search(path.read_text())
        if match and not (path.parent / match.group(1)).is_file():
            found[path.name] = [f"redirects to a missing page: {match.group(1)}"]
    return found


def glue_roles(root: Path, page: str) -> int:
    """`{glue:text}` roles in the page's source as Sphinx copied it to _sources/."""
    sources = list((root / "_sources").glob(page.removesuffix(".html") + ".*"))
    return sum(len(re.findall(r"\{glue:text\}`", s.read_text(errors="replace"))) for s in sources)


@contextmanager
def chromium():
    """Debian's Chromium under Playwright; a missing browser fails with how to install it."""
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"no Chromium at {CHROMIUM}: install Debian's package "
                                "(bash .ci/install-chromium) or set INBOL_CHROMIUM to a Chromium binary")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def view_page(tab, root: Path, page: str, screenshot: Path | None = None) -> PageView:
    """Load one page in `tab` (one tab for the whole book: a new tab per page costs twice the
    time) and take what the browser saw, with the errors and failed requests it reported."""
    errors: list[str] = []
    failed: list[str] = []
    listeners = {"pageerror": lambda exc: errors.append(str(exc)),
                 "console": lambda msg: errors.append(msg.text) if msg.type == "error" else None,
                 "requestfailed": lambda request: failed.append(f"{request.url} ({request.failure})")}
    for event, listener in listeners.items():
        tab.on(event, listener)
    tab.goto((root / page).as_uri(), wait_until="load")
    seen = tab.evaluate(_SNAPSHOT_JS, _NOT_PROSE)
    if screenshot:
        tab.screenshot(path=str(screenshot), full_page=True)
    for event, listener in listeners.items():
        tab.remove_listener(event, listener)
    return PageView(name=page, height=seen["height"], prose=seen["prose"], text=seen["text"],
                    error_outputs=seen["errorOutputs"], images=seen["images"], links=seen["links"],
                    ids=set(seen["ids"]), math=seen["math"], math_unrendered=seen["mathUnrendered"],
                    glue=seen["glue"], glue_roles=glue_roles(root, page), browser_errors=errors,
                    failed=failed, downloads_unlinked=seen["downloadsUnlinked"], wide_tables=seen["wideTables"])


def check_book(root: Path, screenshot: dict[str, Path] | None = None
               ) -> tuple[dict[str, list[str]], dict[str, PageView]]:
    """Open every page of the book at `root` (a `_build/html`) offline; return each page's problems
    (pages without problems are left out) and what was seen. `screenshot` maps a page to the
    PNG file its full-page screenshot is saved to."""
    root = Path(root).resolve()
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT, offline=True)
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        views = {page: view_page(tab, root, page, (screenshot or {}).get(page)) for page in book_pages(root)}
        context.close()
    problems = broken_links(views, root) | broken_redirects(root)
    for name, view in views.items():
        found = [p for check in PAGE_CHECKS for p in check(view)]
        if found:
            problems[name] = found + problems.get(name, [])
    return problems, views


def report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{page}:\n" + "\n".join(f"  - {p}" for p in found)
                     for page, found in sorted(problems.items()))


if __name__ == "__main__":  # python tests/browser.py [_build/html]: check a book you built
    import sys

    found, _ = check_book(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html"))
    print(report(found) or "every page passes")
    sys.exit(1 if found else 0)
