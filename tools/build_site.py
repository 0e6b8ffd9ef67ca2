"""Build the course as a static website: every notebook executed, the reading-group docs, a landing page.

    python tools/build_site.py [--out site] [--jobs 2]

Offline: nothing is fetched while building and the pages load nothing from
the network. Each notebook runs in its own kernel (working folder
``notebooks/``) with matplotlib's inline backend, so every figure becomes a
PNG. An explorer (a cell showing an ipywidgets widget) cannot run without a
kernel: its page shows still figures drawn by the explorer's own ``update``
at a few of the settings its notebook suggests trying, with the line
"The live version needs Binder or JupyterLab." Formulas ($...$, $$...$$) are
turned into MathML while building (latex2mathml), which browsers draw
themselves: no script, no web font, nothing fetched.
"""

from __future__ import annotations

import argparse
import functools
import html
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"
DOC_PAGES = {"facilitator-guide": "Facilitator guide", "glossary": "Glossary", "open-problems": "Open problems"}
BINDER = "https://mybinder.org/v2/gh/OWNER/polylens/HEAD?urlpath=lab/tree/notebooks/{name}.ipynb"
LIVE_NOTE = "The live version needs Binder or JupyterLab."
CELL_TIMEOUT_S = 600
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STILL = "polylens_still"  # output metadata key: which explorer cell a still belongs to

# The settings each explorer is drawn at: its notebook's "Things to try".
# (caption, keyword arguments of the explorer's update).
STILLS: dict[str, list[tuple[str, dict]]] = {
    "PolytopeExplorer": [
        ("Width 16, depth 2 (trained for 400 steps), layer 2", dict(width=16, depth=2, step=400, layer=2)),
        ("Width 32, depth 1: the same 32 neurons in one layer", dict(width=32, depth=1, step=400)),
        ("Width 16, depth 3, coloured by the layer whose boundary cut each region last",
         dict(width=16, depth=3, step=400, layer=3, color="layer")),
    ],
    "LiveTrainingExplorer": [
        ("Width 16, depth 2 at initialisation (step 0)", dict(width=16, depth=2, lr=1e-2, seed=0, step=0)),
        ("The same network after 50 steps", dict(width=16, depth=2, lr=1e-2, seed=0, step=50)),
        ("After 400 steps: regions gathered on the data", dict(width=16, depth=2, lr=1e-2, seed=0, step=400)),
        ("Width 32 after 400 steps: the count fell, then climbed back", dict(width=32, depth=2, lr=1e-2, seed=0,
                                                                             step=400)),
    ],
    "PathExplorer": [
        ("Halfway along the path (t = 0.5), 16 samples", dict(t=0.5, n_samples=16)),
        ("The whole path (t = 1) with 4 samples", dict(t=1.0, n_samples=4)),
        ("The whole path (t = 1) with 256 samples", dict(t=1.0, n_samples=256)),
    ],
    "SceneExplorer": [
        ("A duck, overcast, seed 2", dict(obj="duck", weather="overcast", seed=2)),
        ("The same scene, sunny", dict(obj="duck", weather="sunny", seed=2)),
        ("The same duck, another seed (7)", dict(obj="duck", weather="overcast", seed=7)),
    ],
    "ValidityExplorer": [
        ("alpha = 0: the duck as it is", dict(obj="duck", alpha=0.0)),
        ("alpha = 1: one typical gap toward sunny", dict(obj="duck", alpha=1.0)),
        ("alpha = 4: far beyond the data", dict(obj="duck", alpha=4.0)),
    ],
    "SuperpositionExplorer": [
        ("Dense features (S = 0), importance decay 0.7: only the most important get a dimension",
         dict(sparsity=0.0, decay=0.7)),
        ("Sparse features (S = 0.9), equal importance: a pentagon", dict(sparsity=0.9, decay=1.0)),
        ("In between (S = 0.7), importance decay 0.8", dict(sparsity=0.7, decay=0.8)),
    ],
    "DictionaryExplorer": [
        ("L1 = 0.01, 64 latents: every atom is a bit of everything", dict(l1=0.01, n_latents=64)),
        ("L1 = 0.3, 64 latents", dict(l1=0.3, n_latents=64)),
        ("L1 = 2, 128 latents: a block of dead atoms", dict(l1=2.0, n_latents=128)),
    ],
    "CooccurrenceExplorer": [
        ("Co-occurrence 0: every latent atomic", dict(cooccurrence=0.0)),
        ("Co-occurrence 0.8: combination latents appear", dict(cooccurrence=0.8)),
        ("Co-occurrence 0.97", dict(cooccurrence=0.97)),
    ],
    "SunnyDuckStudio": [
        ("add, duck 3 (overcast), strength 1", dict(duck=3, method="add", strength=1.0)),
        ("add, duck 3, strength 3", dict(duck=3, method="add", strength=3.0)),
        ("transport, duck 3, strength 1", dict(duck=3, method="transport", strength=1.0)),
    ],
}

# Runs in each notebook's kernel after its last cell.
STILLS_CODE = r'''
import io as _io
from IPython.display import display as _display

def _polylens_stills(explorers, settings):
    for key, explorer in explorers.items():
        kind = type(explorer).__name__
        chosen = settings.get(kind) or [("The explorer as the notebook left it (no stills chosen for %s)" % kind, None)]
        for caption, kwargs in chosen:
            if kwargs is not None:
                explorer.update(**kwargs)
            buf = _io.BytesIO()
            explorer.area.fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
            readout = getattr(getattr(explorer, "_readout", None), "value", "")
            meta = {"__KEY__": key}
            _display({"text/html": "<p class='still-caption'>%s</p>" % caption}, raw=True, metadata=meta)
            _display({"image/png": buf.getvalue()}, raw=True, metadata=meta)
            if readout:
                _display({"text/html": "<div class='still-readout'>%s</div>" % readout}, raw=True, metadata=meta)

_polylens_stills(_polylens_explorers, __SETTINGS__)
'''.replace("__KEY__", STILL).replace("__SETTINGS__", repr(STILLS))

# Runs in each notebook's kernel first. Under ipympl a cell ending in `fig.canvas` shows the live figure;
# under the inline backend that would print the canvas's name, so it shows the figure as a PNG instead
# (and closes it, so the backend does not show it a second time at the end of the cell).
CANVAS_CODE = r'''
def _polylens_canvas_png(canvas):
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure
    png = print_figure(canvas.figure, "png", bbox_inches="tight")
    plt.close(canvas.figure)
    return png

from matplotlib.backend_bases import FigureCanvasBase as _FigureCanvasBase
get_ipython().display_formatter.formatters["image/png"].for_type(_FigureCanvasBase, _polylens_canvas_png)
'''

CANVAS_REPR = re.compile(r"^<matplotlib\.[\w.]*Canvas\w* (object )?at 0x[0-9a-f]+>$")
WIDGET_CALL = re.compile(r"^(\w+)\.widget\(", re.M)

CSS = """
body { max-width: 1100px; margin: 0 auto; padding: 0 1.2em 3em; font-size: 17px; line-height: 1.5; }
body.doc { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; }
img { max-width: 100%; height: auto; }
.jp-RenderedImage img, .jp-OutputArea-output img { max-width: 100% !important; height: auto; }
nav.site-nav { position: sticky; top: 0; z-index: 10; background: #f6f6f6; border-bottom: 1px solid #ddd;
  padding: 0.5em 0.8em; margin: 0 -1.2em 1em; font-family: system-ui, sans-serif; font-size: 15px; }
nav.site-nav a { margin-right: 0.9em; text-decoration: none; color: #0b57a4; white-space: nowrap; }
nav.site-nav a.here { font-weight: bold; color: #222; }
nav.pager { display: flex; justify-content: space-between; margin: 2em 0 0; font-family: system-ui, sans-serif; }
.live-note { font-style: italic; background: #fff7df; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
.still-caption { font-weight: bold; margin: 1em 0 0.2em; }
.still-readout { font-size: 90%; color: #333; margin-bottom: 0.8em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
pre, code { font-size: 90%; } pre { background: #f5f5f5; padding: 0.6em; overflow-x: auto; }
.binder { font-size: 90%; }
/* MathML formulas: the browser's math font runs small beside sans-serif text. */
math { font-size: 115%; }
math[display="block"] { margin: 0.6em 0; }
a.anchor-link { visibility: hidden; text-decoration: none; margin-left: 0.25em; color: #999; }
h1:hover > a.anchor-link, h2:hover > a.anchor-link, h3:hover > a.anchor-link, h4:hover > a.anchor-link
  { visibility: visible; }
"""

# A notebook page: nbconvert's lab template without anything it would fetch
# (require.js, the widget manager, MathJax, mermaid), plus the site's navigation.
# Its formulas are MathML already (site_exporter), so MathJax is not needed.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">{{ resources.site_css }}</style>{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.site_nav }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.site_pager }}
{{ super() }}
{%- endblock body_footer -%}
"""


# ------------------------------------------------------------ executing ---

def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def prepare(nb) -> dict[str, int]:
    """Make the copy to execute: inline figures, each explorer registered, stills drawn at the end.

    Returns {key: index of the explorer's cell in the original notebook}.
    """
    import nbformat

    explorers: dict[str, int] = {}
    first = nbformat.v4.new_code_cell(CANVAS_CODE)
    first.metadata["polylens_helper"] = True
    cells = [first]
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        cell.source = re.sub(r"^%matplotlib widget\s*$", "%matplotlib inline", cell.source, flags=re.M)
        calls = WIDGET_CALL.findall(cell.source)
        if calls:
            key = f"cell{index}"
            explorers[key] = index
            helper = nbformat.v4.new_code_cell(
                f"_polylens_explorers = globals().get('_polylens_explorers', {{}})\n"
                f"_polylens_explorers[{key!r}] = {calls[-1]}")
            helper.metadata["polylens_helper"] = True
            cells.append(helper)
    if explorers:
        final = nbformat.v4.new_code_cell(STILLS_CODE)
        final.metadata["polylens_helper"] = True
        cells.append(final)
    nb.cells = cells
    return explorers


def finish(nb, explorers: dict[str, int]) -> None:
    """Put each explorer's stills in place of its widget, drop helpers, widget state and progress bars."""
    import nbformat

    stills: dict[str, list] = {key: [] for key in explorers}
    for cell in nb.cells:
        if cell.metadata.get("polylens_helper"):
            for out in cell.get("outputs", []):
                key = out.get("metadata", {}).get(STILL)
                if key in stills:
                    out.metadata.pop(STILL)
                    stills[key].append(out)
                elif out.output_type == "error":
                    raise RuntimeError("drawing the explorers' stills failed: " + " ".join(out.traceback))
    nb.cells = [c for c in nb.cells if not c.metadata.get("polylens_helper")]
    by_index = {index: key for key, index in explorers.items()}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            data = out.get("data", {})
            if WIDGET_MIME in data:
                continue  # an explorer (replaced below) or a progress bar
            if out.output_type == "execute_result" and set(data) == {"text/plain"} and \
                    CANVAS_REPR.match(data["text/plain"].strip()):
                continue  # `fig.canvas` under the inline backend: the figure itself is shown as a PNG
            if out.output_type == "stream" and out.name == "stderr" and ("%|" in out.text or "\r" in out.text):
                continue  # a text progress bar
            outputs.append(out)
        if index in by_index:
            note = nbformat.v4.new_output("display_data", data={
                "text/html": f"<p class='live-note'>{LIVE_NOTE}</p>", "text/plain": LIVE_NOTE})
            outputs += [note] + stills[by_index[index]]
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)


def execute(path: str) -> tuple[str, str, float]:
    """Run one notebook in a fresh kernel; (name, executed notebook as JSON, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: no progress-bar widgets in the pages
    nb = nbformat.read(path, as_version=4)
    explorers = prepare(nb)
    start = time.perf_counter()
    NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    seconds = time.perf_counter() - start
    finish(nb, explorers)
    return Path(path).stem, nbformat.writes(nb), seconds


# ------------------------------------------------------------ rendering ---

def site_link(href: str) -> str:
    """A link between the course's files, as it reads in the site (one flat folder)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", href, re.I):
        return href
    path, sep, fragment = href.partition("#")
    stem, ext = os.path.splitext(os.path.basename(path))
    if ext in (".md", ".ipynb"):
        path = "index.html" if stem == "README" else stem + ".html"
    return path + sep + fragment


def rewrite_links(page: str) -> str:
    page = re.sub(r'href="([^"]*)"', lambda m: f'href="{site_link(html.unescape(m.group(1)))}"', page)
    # In-page links are written GitHub-style (lower case); nbconvert keeps the heading's case.
    ids = {i.lower(): i for i in re.findall(r'id="([^"]+)"', page)}
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{ids.get(m.group(1).lower(), m.group(1))}"', page)


def nav(here: str, names: list[str]) -> str:
    items = [("index", "Home")] + [(n, n[:2]) for n in names] + list(DOC_PAGES.items())
    links = " ".join(f'<a href="{p}.html"{" class=here" if p == here else ""} title="{html.escape(p)}">'
                     f"{html.escape(label)}</a>" for p, label in items)
    return f'<nav class="site-nav">{links}</nav>'


def pager(here: str, order: list[str], titles: dict[str, str]) -> str:
    i = order.index(here)
    prev = f'<a href="{order[i - 1]}.html">&larr; {html.escape(titles[order[i - 1]])}</a>' if i else "<span></span>"
    nxt = (f'<a href="{order[i + 1]}.html">{html.escape(titles[order[i + 1]])} &rarr;</a>'
           if i + 1 < len(order) else "<span></span>")
    return f'<nav class="pager">{prev}{nxt}</nav>'


def tex_to_mathml(tex: str, display: bool) -> str:
    """MathML for one formula; if latex2mathml cannot read it, its TeX source marked ``tex-unrendered``."""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises several kinds; the page must still build, and tests/site looks for the mark
        print(f"warning: formula left as TeX ({type(exc).__name__}: {exc}): {tex!r}", flush=True)
        return f'<code class="tex-unrendered">{html.escape(tex)}</code>'


@functools.cache
def mathml_renderer_class() -> type:
    """nbconvert's markdown renderer (headings with anchors, highlighted code, attachments), with formulas as MathML.

    Made once, on first use: nbconvert is imported only where the site is built.
    """
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body, display=False)

        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    return MathMLRenderer


def mathml_renderer(**options):
    """A renderer of :func:`mathml_renderer_class` for one markdown text (options: attachments, path, ...)."""
    return mathml_renderer_class()(escape=False, **options)


def markdown(text: str) -> str:
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    return MarkdownWithMath(renderer=mathml_renderer()).render(text)


def site_exporter():
    """nbconvert's HTML exporter with the site's page template; its ``markdown2html`` filter writes formulas as MathML."""
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    class SiteExporter(HTMLExporter):
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            renderer = mathml_renderer(attachments=cell.get("attachments", {}), embed_images=self.embed_images,
                                       path=path, anchor_link_text=self.anchor_link_text,
                                       exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
            return MarkdownWithMath(renderer=renderer).render(source)

    # nbconvert calls the filter with the template context (which cell); jinja2 needs it marked so.
    SiteExporter.markdown2html = jinja2.pass_context(SiteExporter.markdown2html)
    return SiteExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"site.html.j2": PAGE_TEMPLATE})],
                        template_file="site.html.j2")


def doc_page(title: str, body: str, here: str, names: list[str], extra: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8" />\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
            f'<body class="doc">\n{nav(here, names)}\n<main>\n{body}\n</main>\n{extra}</body>\n</html>\n')


def notebook_info(nb) -> tuple[str, str]:
    """(title, duration line) from the notebook's first markdown cell."""
    first = next(c.source for c in nb.cells if c.cell_type == "markdown")
    title = re.search(r"^#\s+(.+)$", first, re.M).group(1).strip()
    about = re.search(r"About [^.*]+", first)
    return title, about.group(0) if about else ""


def readme_parts() -> tuple[str, dict[str, str]]:
    """(README's opening up to Quick start, without the badge; {notebook: its question} from the curriculum table)."""
    readme = (ROOT / "README.md").read_text()
    intro = readme.split("\n## ", 1)[0]
    intro = "\n".join(line for line in intro.splitlines()
                      if not line.startswith("# ") and "mybinder.org/badge" not in line)
    questions = dict(re.findall(r"^\| `(\d\d_\w+)` \| (.+?) \|$", readme, re.M))
    return intro, questions


def landing(names: list[str], titles: dict[str, str], durations: dict[str, str]) -> str:
    intro, questions = readme_parts()
    sessions = "\n".join(
        f'<li><a href="{n}.html"><b>{html.escape(titles[n])}</b></a>'
        f'{" (" + html.escape(durations[n].lower()) + ")" if durations[n] else ""}'
        f'{": " + markdown(questions[n]).strip().removeprefix("<p>").removesuffix("</p>") if n in questions else ""}'
        f' <span class="binder">[<a href="{BINDER.format(name=n)}">launch on Binder</a>]</span></li>'
        for n in names)
    docs = "\n".join(f'<li><a href="{p}.html">{t}</a></li>' for p, t in DOC_PAGES.items())
    body = f"""
<h1>polylens: the polytope lens, as a course you can run</h1>
<h2 id="contents">Contents</h2>
<ul>
<li><a href="#about">What the course is and who it is for</a></li>
<li><a href="#sessions">The sessions, in order</a></li>
<li><a href="#reading-groups">For reading groups</a></li>
<li><a href="#live">Running the notebooks live</a></li>
</ul>
<h2 id="about">What the course is and who it is for</h2>
{markdown(intro)}
<h2 id="sessions">The sessions, in order</h2>
<p>Each page is the notebook with every cell run. Where a notebook has an explorer with
sliders, the page shows still figures of it at a few telling settings; {LIVE_NOTE[0].lower() + LIVE_NOTE[1:]}</p>
<ol start="0">
{sessions}
</ol>
<h2 id="reading-groups">For reading groups</h2>
<ul>
{docs}
</ul>
<h2 id="live">Running the notebooks live</h2>
<p>The "launch on Binder" links open a notebook in JupyterLab on
<a href="https://mybinder.org">mybinder.org</a> (about 2 GB of memory, CPU only). In these links
<code>OWNER</code> is a placeholder: replace it with the GitHub user or organisation that hosts your
copy of the repository. On your own machine, <code>make lab</code> opens the notebooks in JupyterLab.</p>
"""
    return doc_page("polylens: the course", body, "index", names)


def render_notebook(name: str, nb_json: str, names: list[str], order: list[str], titles: dict[str, str]) -> str:
    import nbformat

    exporter = site_exporter()
    resources = {"site_css": CSS, "site_nav": nav(name, names), "site_pager": pager(name, order, titles),
                 "metadata": {"name": titles[name]}}
    page, _ = exporter.from_notebook_node(nbformat.reads(nb_json, as_version=4), resources=resources)
    return rewrite_links(page)


# ----------------------------------------------------------------- main ---

def build(out: Path, jobs: int = 2) -> dict[str, float]:
    """Build the site into ``out`` (replaced); {notebook: seconds to execute}."""
    import nbformat

    paths = notebook_paths()
    names = [p.stem for p in paths]
    titles, durations = {}, {}
    for p in paths:
        titles[p.stem], durations[p.stem] = notebook_info(nbformat.read(p, as_version=4))
    titles.update(DOC_PAGES)
    titles["index"] = "Home"
    order = ["index"] + names + list(DOC_PAGES)

    executed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    # Longest notebooks first, so the two workers finish together.
    longest_first = sorted(paths, key=lambda p: -p.stat().st_size)
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name, nb_json, secs in pool.map(execute, [str(p) for p in longest_first]):
            executed[name], seconds[name] = nb_json, secs
            print(f"executed {name} in {secs:.1f} s", flush=True)

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "index.html").write_text(landing(names, titles, durations))
    for name in names:
        (out / f"{name}.html").write_text(render_notebook(name, executed[name], names, order, titles))
    for page, title in DOC_PAGES.items():
        body = markdown((DOCS / f"{page}.md").read_text())
        (out / f"{page}.html").write_text(rewrite_links(doc_page(title, body, page, names,
                                                                   pager(page, order, titles))))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="folder to write (replaced); default site/")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="notebooks executed at once (default: 2, or 1 on one CPU)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    build(args.out.resolve(), args.jobs)
    print(f"site built in {args.out} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
