"""The documentation: the MkDocs site builds with --strict (a broken link or anchor, or a page left out of the
navigation, fails it), and the README stays short and points at pages that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from tests.conftest import REPO_ROOT


def build(root, site) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", f"{root}/mkdocs.yml", "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_site_builds_strictly_and_a_broken_anchor_would_fail_it(tmp_path):
    built = build(REPO_ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "configuration" / "index.html").exists()
    copy = tmp_path / "copy"
    shutil.copytree(REPO_ROOT / "docs", copy / "docs")
    shutil.copy(REPO_ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "tasks.md"
    page.write_text(page.read_text() + "\nSee [the loops](training.md#no-such-section).\n")
    broken = build(copy, tmp_path / "broken")
    assert broken.returncode != 0 and "no-such-section" in broken.stderr


def test_the_readme_is_short_and_its_links_reach_pages():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links and all((REPO_ROOT / link).exists() for link in links)
