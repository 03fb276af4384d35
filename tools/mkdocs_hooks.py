"""mkdocs hooks: serve MathJax from the site itself (no CDN, works offline).

MathJax 3 comes from the `django-static-mathjax` package (a plain copy of MathJax's `es5` build; the
docs extra installs it). After each build, the TeX-to-CHTML component and its web fonts are copied
into `site/javascripts/mathjax/`, where `mkdocs.yml`'s `extra_javascript` loads them.
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil

FILES = ["tex-chtml.js", "output/chtml/fonts/woff-v2"]


def mathjax_dir() -> pathlib.Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('MathJax not found: install the docs extra, pip install ".[docs]" (django-static-mathjax)')
    root = pathlib.Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (root / FILES[0]).exists():
        raise SystemExit(f"MathJax's es5 build not found under {root}")
    return root


def on_post_build(config, **kwargs) -> None:
    source = mathjax_dir()
    target = pathlib.Path(config["site_dir"]) / "javascripts" / "mathjax"
    for name in FILES:
        src, dst = source / name, target / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
