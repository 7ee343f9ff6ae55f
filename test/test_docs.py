"""The README and docs/*.md: every relative link points at a file that exists, and at a heading that exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks (a ``# comment`` in a shell block is not a heading)."""
    return FENCE.sub("", text)


def anchors(text: str) -> Iterator[str]:
    """The anchors GitHub gives a Markdown page's headings: lower case, punctuation dropped, spaces to dashes,
    repeated headings numbered ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        yield slug if n == 0 else f"{slug}-{n}"


def relative_links(page: Path) -> list[str]:
    """Targets of the page's links and images that are neither URLs nor e-mail addresses."""
    return [t for t in LINK.findall(_prose(page.read_text())) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_anchor_rules_match_githubs():
    text = ("# seg_ros\n## Pipeline speed: `seg-ros bench`\n```bash\n# not a heading\n```\n"
            "### 360×640 on the Xeon\n## Run\n## Run\n")
    assert list(anchors(text)) == ["seg_ros", "pipeline-speed-seg-ros-bench", "360640-on-the-xeon", "run", "run-1"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    links = relative_links(page)
    broken = []
    for target in links:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_file():
            broken.append(f"{target}: no file {file.relative_to(REPO) if file.is_relative_to(REPO) else file}")
        elif anchor and file.suffix == ".md" and anchor not in set(anchors(file.read_text())):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not broken, broken


def test_the_readme_links_every_doc_and_shows_the_demo():
    linked = {(REPO / t.partition("#")[0]).resolve() for t in relative_links(REPO / "README.md")}
    assert set(PAGES[1:]) <= linked, set(PAGES[1:]) - linked
    assert (REPO / "docs" / "demo_contact_sheet.png").resolve() in linked
