"""tools/check_docs.py finds what a reader would see wrong on a built page (the whole site is checked in
.ci/run after `mkdocs build --strict`); here on small pages written for the purpose."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
check_docs = pytest.importorskip("check_docs")


def problems(tmp_path, body: str, head: str = "") -> list[str]:
    page = tmp_path / "index.html"
    page.write_text(f"<html><head>{head}</head><body>{body}</body></html>", encoding="utf-8")
    return check_docs.page_problems(page, pathlib.Path("index.html"), check_docs.parse(page))


def test_a_clean_page_has_no_problem(tmp_path):
    body = '<p>Adam <span class="arithmatex">\\(\\mu_t = \\beta\\mu_{t-1}\\)</span> reads <code>$HOME</code>.</p>'
    assert problems(tmp_path, body) == []


@pytest.mark.parametrize(
    "body,what",
    [
        ("<p>.. math:: x = 1</p>", "reST directive"),
        ("<p>see :func:`gradxform.adam`</p>", "reST role"),
        ("<p>the ``eps`` argument</p>", "double backticks"),
        ("<p>with $\\beta_1$ the decay</p>", "outside math"),
        ("<p>Args: learning_rate: the rate</p>", "docstring section"),
        ('<p><span class="arithmatex">\\(s_0 = \\text{initial\\_value}\\)</span></p>', "shows its backslash"),
        ('<img src="figures/missing.png">', "does not exist"),
    ],
)
def test_what_a_reader_would_see_raw(tmp_path, body, what):
    found = problems(tmp_path, body)
    assert len(found) == 1 and what in found[0], found


def test_nothing_from_another_host(tmp_path):
    head = '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
    head += '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
    head += '<script type="module">await import("https://cdnjs.cloudflare.com/x/mermaid.esm.min.mjs")</script>'
    found = problems(tmp_path, "<p>ok</p>", head)
    assert len(found) == 3 and all("another host" in p for p in found), found


def test_notebook_markdown_keeps_its_dollar_math(tmp_path):
    ok = '<div class="jp-RenderedMarkdown"><p>the rate $\\eta/\\sqrt{t}$ and $$v_t = b v_{t-1}$$</p></div>'
    assert problems(tmp_path, ok) == []
    source = '<div class="clipboard-copy-txt">plt.plot(x, label=r"$\\eta$")</div>'  # a cell's hidden copy
    assert problems(tmp_path, source) == []
    unbalanced = '<div class="jp-RenderedMarkdown"><p>costs $5 and \\frac</p></div>'
    assert problems(tmp_path, unbalanced)
