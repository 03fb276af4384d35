"""The docs iterate the registry: every optimizer has a page in the site's nav that states its defaults;
every torch.optim constructor and wrapper is documented; the architecture page names every package."""

from __future__ import annotations

import ast
import pathlib

import pytest

import gradxform as gx

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NAV = (ROOT / "mkdocs.yml").read_text()


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
