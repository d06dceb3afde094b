"""Every page of the documentation site, opened in headless chromium at 1400 px, shows all of its
main column: no table, code block or long word cut off on the right, nothing scrolled out of sight.

The site is built into a temporary directory with the Sphinx of `make docs` (or, with
REDIS_XCOM_DOCS_HTML=<dir>, an existing build is checked instead). Runs in `make test` only
(browser marker); scripts/ensure-chromium.sh installs chromium and chromedriver.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDTHS = (1400, 1920)

# Every element of the main column that clips its content (overflow hidden, or a horizontal scroll
# bar: the reader sees a cut-off line either way), and every element that reaches past the column's
# right edge (its padding included: furo's headings use it) into the table of contents or off screen.
CLIPPED_JS = """
const main = document.querySelector('article[role="main"]');
const column = document.querySelector('.content');
if (!main || !column) { return ['no main column on this page']; }
const edge = column.getBoundingClientRect().right;
const found = [];
const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className
       ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
for (const el of main.querySelectorAll('*')) {
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden') { continue; }
  const rect = el.getBoundingClientRect();
  if (rect.width === 0 && rect.height === 0) { continue; }
  const text = (el.textContent || '').trim().slice(0, 80);
  if (style.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
    found.push(`${name(el)} is ${el.scrollWidth} px wide inside ${el.clientWidth} px`
               + ` (overflow-x: ${style.overflowX}): ${text}`);
  } else if (rect.right > edge + 1) {
    found.push(`${name(el)} ends at ${Math.round(rect.right)} px,`
               + ` the column at ${Math.round(edge)} px: ${text}`);
  }
}
return found;
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("REDIS_XCOM_DOCS_HTML")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("docs-html")
    # The build of `make docs` (warnings are errors), into a directory of the test's own.
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html", "docs", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, f"sphinx-build failed:\n{build.stdout}\n{build.stderr}"
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "chromium and chromedriver are missing: run scripts/ensure-chromium.sh (as root)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def pages(site: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p for p in site.rglob("*.html") if p.name not in skip and "_static" not in p.parts)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_is_clipped_on_the_right(site: Path, browser: Any, width: int) -> None:
    found = pages(site)
    assert len(found) >= 10, f"only {len(found)} pages in {site}"
    browser.set_window_size(width, 1000)
    clipped: dict[str, list[str]] = {}
    for page in found:
        browser.get(page.as_uri())
        problems = browser.execute_script(CLIPPED_JS)
        if problems:
            clipped[str(page.relative_to(site))] = problems
    report = "\n".join(
        f"{page}:\n  "
        + "\n  ".join(problems[:8])
        + (f"\n  ... {len(problems) - 8} more" if len(problems) > 8 else "")
        for page, problems in clipped.items()
    )
    assert not clipped, f"content cut off on the right at {width} px:\n{report}"
