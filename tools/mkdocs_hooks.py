"""mkdocs hooks: serve MathJax from the site itself (no CDN, works offline); render the notebooks.

MathJax 3 comes from the `django-static-mathjax` package (a plain copy of MathJax's `es5` build; the
docs extra installs it). After each build, the TeX-to-CHTML component and its web fonts are copied
into `site/javascripts/mathjax/`, where `mkdocs.yml`'s `extra_javascript` loads them.

The notebooks live in `notebooks/` at the repository's root (outside `docs/`); `on_files` adds them to
the site as `notebooks/<name>.ipynb`, before mkdocs-jupyter (which renders them with their stored
outputs) looks at the files. `on_post_page` drops what nbconvert's template would load from elsewhere
(mermaid from a CDN, an empty require.js tag); MathJax renders the notebooks' `$...$` (see
`docs/javascripts/mathjax.js`).
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parent.parent

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


@event_priority(100)  # before mkdocs-jupyter's on_files
def on_files(files, config, **kwargs):
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{nb.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


MERMAID = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?cdnjs(?:(?!</script>).)*?</script>", re.S)
EMPTY_SCRIPT = re.compile(r"<script src=\"\">\s*</script>")


def on_post_page(output, page, config, **kwargs):
    if page.file.src_uri.endswith(".ipynb"):
        output = EMPTY_SCRIPT.sub("", MERMAID.sub("", output))
    return output
