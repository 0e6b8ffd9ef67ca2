"""The course as a website (tools/build_site.py): every page loads offline, whole, and linked up."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.site

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DOCS = ["facilitator-guide", "glossary", "open-problems"]
LIVE_NOTE = "The live version needs Binder or JupyterLab."
# A code cell draws a figure when it shows one (plt.show(), fig.canvas, a picture grid) or builds an explorer.
FIGURE_CELL = re.compile(r"plt\.show\(\)|fig\.canvas|picture_grid\(|\.widget\(|^fig\.tight_layout\(\)\s*$", re.M)
EXPLORER_CELL = re.compile(r"^\w+\.widget\(", re.M)


class Page(HTMLParser):
    """The links, images and ids of one page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        if tag in ("script", "link") and (attrs.get("src") or attrs.get("href")):
            self.links.append(attrs.get("src") or attrs.get("href"))


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def pages(site: Path) -> list[Path]:
    return sorted(site.glob("*.html"))


def test_every_page_is_there(site):
    expected = {"index"} | {p.stem for p in NOTEBOOKS} | set(DOCS)
    assert {p.stem for p in pages(site)} == expected


def test_internal_links_resolve(site):
    parsed = {p.name: Page(p.read_text()) for p in pages(site)}
    broken = []
    for name, page in parsed.items():
        for href in page.links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                continue  # external: Binder, mybinder.org, papers
            target = unquote(parts.path) or name
            if not (site / target).is_file():
                broken.append(f"{name}: {href} (no {target} in the site)")
            elif parts.fragment and target in parsed and \
                    not {parts.fragment, unquote(parts.fragment)} & parsed[target].ids:  # a browser tries both
                broken.append(f"{name}: {href} (no id {parts.fragment!r} in {target})")
    assert not broken, "links that go nowhere:\n" + "\n".join(broken)


def test_landing_page_lists_the_sessions_in_order_with_binder_links(site):
    text = (site / "index.html").read_text()
    page = Page(text)
    sessions = [h for h in page.links if re.fullmatch(r"\d\d_\w+\.html", h)]
    assert list(dict.fromkeys(sessions)) == [p.stem + ".html" for p in NOTEBOOKS]
    for nb in NOTEBOOKS:
        assert f"https://mybinder.org/v2/gh/OWNER/polylens/HEAD?urlpath=lab/tree/notebooks/{nb.name}" in text
    assert "OWNER" in re.sub(r"<[^>]+>", "", text.split('id="live"')[1]), "say that OWNER is a placeholder"
    for doc in DOCS:
        assert f'href="{doc}.html"' in text
    assert 'href="#sessions"' in text, "a table of contents"


def test_nothing_live_is_left_and_nothing_is_fetched(site):
    for path in pages(site):
        text = path.read_text()
        assert "application/vnd.jupyter.widget" not in text, f"{path.name} holds raw widget JSON"
        assert "Loading widget" not in text, path.name
        assert not re.search(r"<(script|link)[^>]+(src|href)=\"(https?:)?//", text), f"{path.name} fetches from the web"


def test_formulas_are_typeset(site):
    """Every $...$ of the sources is MathML on the page: none left as TeX, none that the converter gave up on."""
    sources = {p.stem: "".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                               if c["cell_type"] == "markdown") for p in NOTEBOOKS}
    sources |= {doc: (REPO / "docs" / f"{doc}.md").read_text() for doc in DOCS}
    for name, source in sources.items():
        text = (site / f"{name}.html").read_text()
        assert "tex-unrendered" not in text, f"{name}: a formula latex2mathml could not read"
        prose = re.sub(r"<(pre|code|script|style|math)\b.*?</\1>", "", text, flags=re.S)
        assert not re.search(r"\$[^$<>\n]*\\[A-Za-z]+[^$<>\n]*\$", prose), f"{name}: TeX left as source"
        if re.search(r"\$[^$\s][^$]*\$", source):
            assert "<math" in text, f"{name} has formulas but no MathML"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_page_shows_every_figure(site, notebook):
    cells = code_cells(notebook)
    page = Page((site / f"{notebook.stem}.html").read_text())
    figures = sum(bool(FIGURE_CELL.search(c)) for c in cells)
    explorers = sum(bool(EXPLORER_CELL.search(c)) for c in cells)
    stills = len(re.findall(r"class=[\"']still-caption[\"']", (site / f"{notebook.stem}.html").read_text()))
    assert len(page.images) >= figures, f"{len(page.images)} images for {figures} figure cells"
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    text = (site / f"{notebook.stem}.html").read_text()
    assert text.count(LIVE_NOTE) == explorers, "each explorer says where the live version runs"
    assert stills >= 2 * explorers, "each explorer shows still figures at a few settings"


def test_every_page_loads_in_chromium(site, browser, artifacts):
    problems = []
    for path in pages(site):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda req: req.url.startswith(("file:", "data:")) or errors.append(f"fetched {req.url}"))
        page.goto(path.as_uri(), wait_until="load")
        broken = page.evaluate("""() => Array.from(document.images)
            .filter(img => !(img.complete && img.naturalWidth > 0)).length""")
        # A formula the browser drew has a size; MathML it could not lay out would be 0 x 0
        # (formulas inside a closed "Solution" block are not drawn until it opens).
        flat = page.evaluate("""() => Array.from(document.querySelectorAll('math'))
            .filter(m => !m.closest('details:not([open])'))
            .filter(m => { const r = m.getBoundingClientRect(); return !(r.width > 0 && r.height > 0); }).length""")
        if flat:
            problems.append(f"{path.name}: {flat} formulas drawn with no size")
        wide = page.evaluate("""() => Array.from(document.images)
            .filter(img => img.getBoundingClientRect().width > document.documentElement.clientWidth + 1).length""")
        if errors:
            problems.append(f"{path.name}: console errors {errors}")
        if broken:
            problems.append(f"{path.name}: {broken} images did not load")
        if wide:
            problems.append(f"{path.name}: {wide} images wider than the window")
        if path.stem == "index":
            page.screenshot(path=str(artifacts / "site-index.png"), full_page=True)
        if path.stem == "06_sunny_duck":  # the studio's stills
            page.locator(".live-note").first.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "site-06_sunny_duck.png"))
        page.close()
    assert not problems, "\n".join(problems)
