"""Finds display equations wider than the page's text column, in a built site, with headless Chromium.

    python tools/check_wide_math.py SITE [PAGE ...]     # e.g. site/ optimizers/adam

`tools/check_docs.py` reads text and cannot see how wide an equation renders; this script opens each
page in Chromium (Debian package `chromium`), lets MathJax typeset it, and lists every display equation
whose typeset width exceeds the article column at a 1280 px window, with the start of its TeX. Exit
status 1 if any is found. Not part of `.ci/run` (it needs a browser); run it after changing equations.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = (Path(__file__).with_name("wide_math.js")).read_text()


def wide_equations(page: Path, browser: str) -> list[str]:
    probe = page.with_name("_wide_probe.html")
    probe.write_text(page.read_text().replace("</body>", SCRIPT.replace("\n", " ") + "</body>"))
    try:
        out = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,1800",
                "--virtual-time-budget=15000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        probe.unlink()
    found = re.findall(r"WIDE&lt;&lt;(.*?)&gt;&gt;", out, re.S)
    if not found:
        return [f"(no result: MathJax did not finish on {page})"]
    text = html.unescape(found[-1])
    return [x for x in text.split(" ||| ") if x.strip()]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    site = Path(argv[0])
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("check_wide_math: no chromium on PATH (apt-get install chromium)")
        return 2
    pages = [site / p / "index.html" for p in argv[1:]] or sorted(site.rglob("index.html"))
    bad = 0
    for page in pages:
        for eq in wide_equations(page, browser):
            bad += 1
            print(f"{page.relative_to(site).parent}: {eq[:100]}")
    print(f"check_wide_math: {bad} wide equation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
