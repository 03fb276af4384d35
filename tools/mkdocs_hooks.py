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


# `::: gradxform.adam` names the function, but the griffe loader mkdocstrings uses finds the submodule
# `gradxform.optimizers.adam` under that name first (a module named like the function it defines). So a
# directive naming a function or class of gradxform is pointed at its definition, `::: module.qualname`,
# with the heading the page asked for; a name that is a module stays as it is.
DIRECTIVE = re.compile(r"^::: (gradxform(?:\.\w+)+)[ \t]*\n((?:[ \t]+.*\n)*)", re.M)


def canonical(ident: str) -> str | None:
    """`module.qualname` of the function or class `ident` names, or `None` (a module, or not found)."""
    import importlib
    import inspect

    parts = ident.split(".")
    try:
        obj = importlib.import_module(parts[0])
        for part in parts[1:]:
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return None
    obj = inspect.unwrap(obj)
    path = f"{obj.__module__}.{obj.__qualname__}"
    return None if path == ident or "<" in path else path


def with_definitions(markdown: str) -> str:
    def point(m: re.Match) -> str:
        ident, options = m.group(1), m.group(2)
        target = canonical(ident)
        if target is None:
            return m.group(0)
        lines = options.splitlines(keepends=True)
        heading = f"      heading: {ident}\n"
        if lines and lines[0].strip() == "options:":
            body = lines[0] + heading + "".join(lines[1:])
        else:
            body = "    options:\n" + heading + options
        return f"::: {target}\n{body}"

    return DIRECTIVE.sub(point, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    return with_definitions(markdown)
