"""Checks a built site (`mkdocs build --strict --site-dir SITE`): what a reader sees, not what the sources say.

    python tools/check_docs.py SITE

Fails (exit 1, one line per problem) on:

- raw reST or unrendered Markdown in any page's text: `:math:`, `:func:`-style roles, `.. math::` and
  other directives, double backticks, a `$` outside math, TeX commands outside math, docstring
  sections (`Args:`, `Returns:`) left as plain paragraphs;
- a name of `gradxform.__all__` (or of a public module in it) without its entry in the API reference
  (`site/api/`), or an entry there for a name that is not public;
- a script, stylesheet or font loaded from another host, also by an inline script (the site must work offline),
  or MathJax missing from the site;
- an image that does not exist, a registry optimizer's page without its figure
  (`figures/optimizers/<name>.png`), the schedules, race and notebooks pages without their figures.
"""

from __future__ import annotations

import html.parser
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

SKIP_TEXT = {"code", "pre", "script", "style", "kbd", "samp", "textarea"}
RAW = [
    (re.compile(r":(?:py:)?(?:math|func|class|mod|meth|attr|data|obj|exc|ref|doc):(?:`|$|\x00)"), "a reST role"),
    (re.compile(r"(?m)^\s*\.\. [a-z-]+::"), "a reST directive"),
    (re.compile(r"``"), "double backticks (reST literal)"),
    (re.compile(r"\$"), "a `$` outside math (unrendered math?)"),
    (re.compile(r"\\(?:frac|sqrt|mathbb|mathrm|text|hat|beta|alpha|epsilon|eta|lambda|nabla|sum|left|right)\b"),
     "a TeX command outside math"),
    (re.compile(r"^\s*(?:Args|Arguments|Returns|Raises|Yields|Attributes|Parameters):\s"),
     "a docstring section rendered as text"),
]
# math (arithmatex), highlighted code, and the hidden copy of a notebook cell's source (its copy button)
SKIP_CLASSES = {"arithmatex", "highlight", "clipboard-copy-txt"}
REMOTE = re.compile(r"^(?:https?:)?//", re.I)
TEXT_ESCAPE = re.compile(r"\\text\{[^}]*\\[_&%#$][^}]*\}")
REMOTE_IN_SCRIPT = re.compile(r"""["'](?:https?:)?//[^"']+\.(?:m?js|css)["']""", re.I)
# A notebook's Markdown cell (mkdocs-jupyter) keeps its math as $...$ / $$...$$, which MathJax renders there.
NOTEBOOK_MARKDOWN = "jp-RenderedMarkdown"
NOTEBOOK_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)


class Page(html.parser.HTMLParser):
    """Collects a page's visible text (outside code and math), scripts, stylesheets, images and ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, str]] = []  # (tag, skipped, class attribute)
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.inline_scripts: list[str] = []
        self.math: list[str] = []  # the TeX of the page's math (arithmatex)
        self.notebook_depth: int | None = None  # the stack depth of the notebook Markdown cell we are in
        self.notebook_text: list[str] = []

    def skipping(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        if tag == "link" and a.get("href"):
            self.links.append((a.get("rel") or "", a["href"]))
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag in {"br", "img", "hr", "meta", "link", "input", "source", "wbr"}:
            return
        classes = (a.get("class") or "").split()
        if NOTEBOOK_MARKDOWN in classes and self.notebook_depth is None:
            self.notebook_depth = len(self.stack)
        skip = self.skipping() or tag in SKIP_TEXT or bool(SKIP_CLASSES.intersection(classes))
        if skip and not self.skipping():
            self.text.append("\x00")  # where code or math was: a role right before it still shows
        self.stack.append((tag, skip, a.get("class") or ""))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        if self.notebook_depth is not None and len(self.stack) <= self.notebook_depth:
            self.notebook_depth = None
            self.text.append(NOTEBOOK_MATH.sub("\x00", "".join(self.notebook_text)))
            self.notebook_text = []
        if tag in {"p", "li", "td", "th", "div", "h1", "h2", "h3", "h4", "dd", "dt"}:
            self.text.append("\n")

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "script":
            self.inline_scripts.append(data)
        if any("arithmatex" in cls for _, _, cls in self.stack):
            self.math.append(data)
        if not self.skipping():
            (self.text if self.notebook_depth is None else self.notebook_text).append(data)


def parse(path: pathlib.Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def api_identifiers() -> set[str]:
    import make_api

    return {ident for ident, _, _ in make_api.entries()}


def page_problems(path: pathlib.Path, rel: pathlib.Path, page: Page) -> list[str]:
    """What is wrong on one page: raw reST or unrendered math in its text, remote scripts, missing images."""
    problems: list[str] = []
    text = "".join(page.text)
    for line in text.splitlines():
        for pattern, what in RAW:
            if pattern.search(line):
                problems.append(f"{rel}: {what}: {line.strip()[:120]!r}")
    for src in page.scripts:
        if REMOTE.match(src):
            problems.append(f"{rel}: loads a script from another host: {src}")
    for tex in TEXT_ESCAPE.findall("".join(page.math)):
        problems.append(f"{rel}: {tex!r} in math shows its backslash (MathJax's \\text takes `_` as it is)")
    for script in page.inline_scripts:
        for url in REMOTE_IN_SCRIPT.findall(script):
            problems.append(f"{rel}: an inline script loads {url} from another host")
    for rel_attr, href in page.links:
        if REMOTE.match(href) and any(r in rel_attr for r in ("stylesheet", "preconnect", "preload", "icon")):
            problems.append(f"{rel}: loads {rel_attr} from another host: {href}")
    for src in page.images:
        if REMOTE.match(src) or src.startswith("data:"):
            continue
        target = (path.parent / src.split("#")[0]).resolve()
        if not target.exists():
            problems.append(f"{rel}: image {src} does not exist")
    return problems


def check(site: pathlib.Path) -> list[str]:
    import gradxform as gx

    problems: list[str] = []
    pages = {p: parse(p) for p in sorted(site.rglob("*.html"))}
    if not pages:
        return [f"{site}: no HTML pages (build the site first)"]

    for path, page in pages.items():
        problems += page_problems(path, path.relative_to(site), page)

    if not (site / "javascripts" / "mathjax" / "tex-chtml.js").exists():
        problems.append("javascripts/mathjax/tex-chtml.js: MathJax is not served by the site")

    # The API reference: every public name, and nothing else.
    api_ids = set().union(*(p.ids for path, p in pages.items() if path.relative_to(site).parts[0] == "api"))
    wanted = api_identifiers()
    # tools/mkdocs_hooks.py points `::: gradxform.adam` at its definition, gradxform.optimizers.adam.adam:
    # the entry's id is then that path (with the public name as its heading).
    from mkdocs_hooks import canonical

    alias = {ident: canonical(ident) or ident for ident in wanted}
    for ident in sorted(wanted):
        if ident not in api_ids and alias[ident] not in api_ids:
            problems.append(f"api/: no entry for {ident} (run python tools/make_api.py)")
    known = wanted | set(alias.values())
    documented = {i for i in api_ids if i.startswith("gradxform.") and "--" not in i and "(" not in i}
    packages = {f"gradxform.{p.name}" for p in (ROOT / "gradxform").iterdir() if (p / "__init__.py").exists()}
    for ident in sorted(documented - known - packages):
        parent = ident.rsplit(".", 1)[0]
        if parent not in known:  # members of a documented class (fields, methods) are fine
            problems.append(f"api/: {ident} is documented but is not a public name")

    # Figures a reader looks at.
    def page_of(*parts: str) -> Page | None:
        return pages.get(site.joinpath(*parts, "index.html"))

    for entry in gx.registry.entries("optimizer"):
        page = page_of("optimizers", entry.name)
        want = f"figures/optimizers/{entry.name}.png"
        if page is None:
            problems.append(f"optimizers/{entry.name}/: no page")
        elif not any(src.endswith(want) for src in page.images):
            problems.append(f"optimizers/{entry.name}/: no figure {want}")
    for parts, want in [(("schedules",), "figures/schedules/"), (("race",), "figures/race"),
                        (("notebooks",), "figures/notebooks/")]:
        page = page_of(*parts)
        if page is None or not any(want in src for src in page.images):
            problems.append(f"{'/'.join(parts)}/: no figure {want}*")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(pathlib.Path(argv[0]))
    for p in problems:
        print(p)
    print(f"check_docs: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
