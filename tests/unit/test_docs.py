"""The manual builds, the README stays a one-screen entry point, and the README's links lead somewhere.

The configuration reference inside the manual is checked in tests/unit/config/test_schema_descriptions.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

README_MAX_LINES = 200
# [text](target) and [text](<target with spaces>), not images' or code's brackets
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def relative_links(markdown: str) -> list[str]:
    """Targets of the Markdown links outside code that point into the repository (no scheme, no bare anchor)."""
    targets = LINK.findall(CODE.sub("", markdown))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def broken_links(markdown_file: Path) -> list[str]:
    base = markdown_file.parent
    return [
        t for t in relative_links(markdown_file.read_text(encoding="utf-8")) if not (base / t.split("#")[0]).exists()
    ]


def test_mkdocs_builds_the_manual_strictly(repo, tmp_path):
    """Offline and --strict: a broken link, a missing anchor or a page left out of the nav fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "reference" / "config" / "index.html").is_file()


def test_readme_fits_on_a_screen(repo):
    n = len((repo / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, (
        f"README.md has {n} lines (at most {README_MAX_LINES}): it is the entry point; move detail to docs/"
    )


def test_every_relative_link_of_the_readme_resolves(repo):
    links = relative_links((repo / "README.md").read_text(encoding="utf-8"))
    assert any(t.startswith("docs/") for t in links)  # the README points into the manual
    assert broken_links(repo / "README.md") == []


def test_link_check_finds_a_missing_target_and_skips_urls_anchors_and_code(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[a](docs/a.md#x) [gone](docs/gone.md) [web](https://example.org) [top](#a) ![img](pic.png)\n"
        "`[code](not/a/link.md)`\n```\n[block](nor/this.md)\n```\n[spaced](<docs/a.md>)\n"
    )
    assert relative_links(page.read_text()) == ["docs/a.md#x", "docs/gone.md", "docs/a.md"]
    assert broken_links(page) == ["docs/gone.md"]
