"""The docs iterate the registry and `gradxform.__all__`: every optimizer has a page in the site's nav
that states its defaults and shows its figure; every torch.optim constructor and wrapper is documented;
the architecture page names every package; the API pages are current (one entry per public name); every
public function's docstring is Markdown with an `Args:` section."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import re
import sys

import pytest

import gradxform as gx

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NAV = (ROOT / "mkdocs.yml").read_text()
sys.path.insert(0, str(ROOT / "tools"))
import make_api  # noqa: E402


@pytest.mark.parametrize("entry", gx.registry.entries("optimizer"), ids=lambda e: e.name)
def test_every_optimizer_has_a_page_with_its_defaults(entry):
    page = DOCS / "optimizers" / f"{entry.name}.md"
    assert page.exists(), f"no docs page for {entry.name}"
    assert f"optimizers/{entry.name}.md" in NAV
    text = page.read_text()
    assert f"::: gradxform.{entry.name}" in text  # its API section
    # The page's "Use" line, `tx = gx.<name>(...)`, states every default as the factory has it.
    line = next((ln for ln in text.splitlines() if ln.startswith(f"tx = gx.{entry.name}(")), None)
    assert line is not None, f"{entry.name}: no `tx = gx.{entry.name}(...)` line"
    call = ast.parse(line).body[0].value
    stated = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    for arg, default in entry.defaults.items():
        assert arg in stated and stated[arg] == default, f"{entry.name}: the page states {arg}={stated.get(arg)!r}"


@pytest.mark.parametrize("entry", gx.registry.entries("torch") + gx.registry.entries("wrapper"), ids=lambda e: e.name)
def test_every_torch_constructor_and_wrapper_is_documented(entry):
    page = DOCS / ("torch.md" if entry.kind == "torch" else "robustness.md")
    assert f"`{entry.factory.__name__}" in page.read_text()


def test_architecture_names_every_package():
    text = (DOCS / "architecture.md").read_text()
    for package in sorted(p.name for p in (ROOT / "gradxform").iterdir() if (p / "__init__.py").exists()):
        assert f"{package}/" in text, package


def test_api_pages_are_current():
    # A name added to gradxform.__all__ (or to a public module's __all__) needs `python tools/make_api.py`.
    assert make_api.main(["--check"]) == 0, "the API pages are not current: run python tools/make_api.py"
    text = "".join((DOCS / "api" / name).read_text() for name in make_api.pages())
    for ident, _, _ in make_api.entries():
        assert f"::: {ident}\n" in text, ident


def _public_functions():
    gx_module = importlib.import_module("gradxform")
    for ident, _, _ in make_api.entries():
        obj = gx_module
        for part in ident.split(".")[1:]:
            obj = getattr(obj, part)
        if inspect.isfunction(obj):
            yield ident, obj


REST = re.compile(r":(?:math|func|class|mod|meth|attr|data|obj|exc|ref):`|^\s*\.\. [a-z-]+::|(?<!`)``(?!`)", re.M)


@pytest.mark.parametrize("ident,fn", list(_public_functions()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_public_function_has_a_markdown_docstring_with_args(ident, fn):
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{ident}: no docstring"
    assert not REST.search(doc), f"{ident}: reST in its docstring: {REST.search(doc).group(0)!r}"
    params = list(inspect.signature(fn).parameters)
    if params:
        assert "\nArgs:\n" in doc, f"{ident}: no Args: section"
        section = doc.split("\nArgs:\n", 1)[1]
        for name, p in inspect.signature(fn).parameters.items():
            shown = {p.VAR_POSITIONAL: f"*{name}", p.VAR_KEYWORD: f"**{name}"}.get(p.kind, name)
            assert re.search(rf"^\s+{re.escape(shown)}:", section, re.M), f"{ident}: Args: does not describe {shown}"


def _make_figures():
    pytest.importorskip("matplotlib")
    import make_figures

    return make_figures


@pytest.mark.parametrize("entry", gx.registry.entries("optimizer"), ids=lambda e: e.name)
def test_every_optimizer_page_shows_its_figure(entry):
    # The figure is drawn from the registry: `python tools/make_figures.py optimizers <name>` draws it and
    # puts the line in the page.
    make_figures = _make_figures()
    png = DOCS / "figures" / "optimizers" / f"{entry.name}.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png}: run tools/make_figures.py"
    assert make_figures.figure_line(entry.name) in (DOCS / "optimizers" / f"{entry.name}.md").read_text()


def test_every_schedule_is_plotted_and_the_race_figure_is_shown():
    make_figures = _make_figures()
    assert set(make_figures.SCHEDULES) == set(gx.schedules.__all__), "each schedule needs an example to plot"
    assert "](figures/schedules/schedules.png)" in (DOCS / "schedules.md").read_text()
    race = (DOCS / "race.md").read_text()
    assert "](figures/race.png)" in race and make_figures.RACE_BEGIN in race
    assert make_figures.check() == []

