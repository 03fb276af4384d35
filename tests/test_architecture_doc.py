"""`docs/architecture.md` stays true to the code: every module of the package is in its layout tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gradxform"
TEXT = (ROOT / "docs" / "architecture.md").read_text()


def _tree_entries() -> dict[str, set[str]]:
    """`{package folder: module file names}` as the layout tree (the first code block) lists them."""
    block = TEXT.split("```")[1]
    out: dict[str, set[str]] = {}
    folder = None
    for line in block.splitlines():
        m = re.match(r"^  (\w+)/", line)
        if m:
            folder = m.group(1)
            out.setdefault(folder, set())
            continue
        m = re.match(r"^    (\w+\.py)\b", line)
        if m and folder:
            out[folder].add(m.group(1))
    return out


FAMILIES = ["blocks", "optimizers"]


@pytest.mark.parametrize("folder", FAMILIES)
def test_every_module_of_a_family_package_is_in_the_layout(folder):
    listed = _tree_entries().get(folder, set())
    modules = {p.name for p in (PACKAGE / folder).glob("*.py") if p.name != "__init__.py"}
    assert modules - listed == set(), f"docs/architecture.md's tree lacks {sorted(modules - listed)} under {folder}/"
    assert listed - modules == set(), f"docs/architecture.md's tree lists {sorted(listed - modules)} not in {folder}/"


def test_every_subpackage_is_in_the_layout():
    listed = set(_tree_entries())
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} | {"compat"}
    packages.discard("compat")
    missing = {p for p in packages if p not in listed and f"{p}/" not in TEXT}
    assert missing == set(), f"docs/architecture.md does not mention {sorted(missing)}"
