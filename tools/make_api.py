"""Writes the API reference: one page per public subpackage of gradxform, from `gradxform.__all__`.

Every name in `gradxform.__all__` is documented on the page of the subpackage that defines it, under
a heading per source module, as `::: gradxform.<name>`; a name that is a module (`schedules`,
`linesearch`, `registry`, ...) is documented with its own public names, as
`::: gradxform.<module>.<name>`. Nothing else (no private module, no internals of the race) is.
The pages' nav entries in `mkdocs.yml` are rewritten between the `# api-nav` markers.

    python tools/make_api.py          # writes docs/api/*.md and the nav
    python tools/make_api.py --check  # exits 1, naming the files, if they are not current

`tests/test_docs.py` runs the check, so a name added to `gradxform.__all__` fails the tests until the
pages are regenerated.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradxform as gx  # noqa: E402

API = ROOT / "docs" / "api"
MKDOCS = ROOT / "mkdocs.yml"
BEGIN, END = "# api-nav: begin (tools/make_api.py)", "# api-nav: end"

# Page order and titles, as `gradxform/__init__.py` groups its names; a subpackage missing here still
# gets a page (titled by its name), after these.
PAGES = {
    "core": "Transforms and chains",
    "hyper": "Hyperparameters",
    "numerics": "Numerics",
    "blocks": "Blocks",
    "optimizers": "Optimizers and the registry",
    "schedules": "Schedules",
    "wrappers": "Wrappers",
    "solve": "Training loops and minimize",
    "curvature": "Curvature methods",
    "linesearch": "Line searches",
    "perf": "Performance",
    "distributed": "Sharding",
    "io": "Checkpoints",
    "compat": "torch.optim compatibility",
}


def module_public_names(module: types.ModuleType) -> list[str]:
    """A module's public names: its `__all__`, else the functions and classes it defines."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n
        for n, o in vars(module).items()
        if not n.startswith("_")
        and (inspect.isfunction(o) or inspect.isclass(o))
        and getattr(o, "__module__", None) == module.__name__
    ]


def assigns(module: types.ModuleType, name: str) -> bool:
    """Whether `module`'s source binds `name` at its top level (a constant, a type alias)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def home(name: str, obj: object) -> str:
    """The source module that defines `obj` (a module is its own home)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    if (inspect.isfunction(obj) or inspect.isclass(obj)) and module and module.startswith("gradxform"):
        return module
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("gradxform.") and getattr(module, name, None) is obj and assigns(module, name):
            return module_name
    raise ValueError(f"cannot tell where gradxform's {name!r} is defined")


def entries() -> list[tuple[str, str, str]]:
    """(identifier, source module, subpackage) for every documented name, in `__all__` order."""
    out = []
    for name in gx.__all__:
        obj = getattr(gx, name)
        if isinstance(obj, types.ModuleType):
            for sub in module_public_names(obj):
                inner = getattr(obj, sub)
                if isinstance(inner, types.ModuleType):  # gradxform.compat.torch
                    for leaf in module_public_names(inner):
                        module = home(leaf, getattr(inner, leaf))
                        out.append((f"gradxform.{name}.{sub}.{leaf}", module, module.split(".")[1]))
                else:
                    module = home(sub, inner)
                    out.append((f"gradxform.{name}.{sub}", module, module.split(".")[1]))
        else:
            module = home(name, obj)
            out.append((f"gradxform.{name}", module, module.split(".")[1]))
    return out


def summary(module_name: str) -> str:
    doc = inspect.getdoc(importlib.import_module(module_name)) or module_name
    return doc.strip().splitlines()[0].rstrip(".").split(": ")[0]


def pages() -> dict[str, str]:
    by_package: dict[str, dict[str, list[str]]] = {}
    for ident, module, package in entries():
        by_package.setdefault(package, {}).setdefault(module, []).append(ident)
    order = [p for p in PAGES if p in by_package] + sorted(p for p in by_package if p not in PAGES)
    out = {}
    index = [
        "# API reference",
        "",
        "Every name of `gradxform.__all__`, on the page of the subpackage that defines it, grouped by source",
        "module. The optimizers also have their own pages under [Optimizers](../optimizers/index.md), with",
        "their equations, chains and defaults beside optax's, torch.optim's and Keras'.",
        "",
        "| page | subpackage | names |",
        "| --- | --- | --- |",
    ]
    for package in order:
        title = PAGES.get(package, package)
        count = sum(len(v) for v in by_package[package].values())
        index.append(f"| [{title}]({package}.md) | `gradxform.{package}` | {count} |")
        lines = [
            f"# {title}",
            "",
            f"`gradxform.{package}`. Generated by `tools/make_api.py` from `gradxform.__all__`.",
            "",
            f"::: gradxform.{package}",
            "    options:",
            "      show_root_heading: false",
            "      members: false",
            "",
        ]
        for module, idents in by_package[package].items():
            if module != f"gradxform.{package}":
                lines += [f"## {summary(module)}", "", f"`{module}`", ""]
            for ident in idents:
                lines += [f"::: {ident}", "    options:", "      heading_level: 3", ""]
        out[f"{package}.md"] = "\n".join(lines).rstrip() + "\n"
    out["index.md"] = "\n".join(index) + "\n"
    return out


def nav(files: dict[str, str]) -> str:
    lines = [f"  {BEGIN}", "  - API reference:", "      - api/index.md"]
    for name, text in files.items():
        if name != "index.md":
            title = text.splitlines()[0][2:]
            lines.append(f"      - {title}: api/{name}")
    lines.append(f"  {END}")
    return "\n".join(lines)


def mkdocs_with_nav(files: dict[str, str]) -> str:
    text = MKDOCS.read_text()
    start, stop = text.index(f"  {BEGIN}"), text.index(f"  {END}") + len(f"  {END}")
    return text[:start] + nav(files) + text[stop:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the pages or the nav are not current")
    args = parser.parse_args(argv)
    files = pages()
    wanted = {API / name: text for name, text in files.items()}
    wanted[MKDOCS] = mkdocs_with_nav(files)
    stale = [p for p, t in wanted.items() if not p.exists() or p.read_text() != t]
    extra = [p for p in API.glob("*.md") if p not in wanted] if API.exists() else []
    if args.check:
        for p in stale + extra:
            print(f"not current: {p.relative_to(ROOT)} (run python tools/make_api.py)", file=sys.stderr)
        return 1 if stale or extra else 0
    API.mkdir(parents=True, exist_ok=True)
    for p in extra:
        p.unlink()
    for p, t in wanted.items():
        p.write_text(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
