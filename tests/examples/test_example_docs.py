"""The documentation shows the example DAGs' own code: every ``literalinclude`` names markers that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = REPO / "docs"
_INCLUDE = re.compile(r"```\{literalinclude\} (?P<target>\S+)\n(?P<options>(?::[^\n]*\n)*)")


def includes() -> list[tuple[str, str, dict[str, str]]]:
    """(page, included file, options) of every ``literalinclude`` in the docs."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts:
            continue
        for match in _INCLUDE.finditer(page.read_text(encoding="utf-8")):
            options = {}
            for line in match["options"].splitlines():
                name, _, value = line[1:].partition(":")
                options[name.strip()] = value.strip().strip('"')
            target = (page.parent / match["target"]).resolve()
            found.append((str(page.relative_to(DOCS)), str(target), options))
    return found


@pytest.mark.parametrize(("page", "target", "options"), includes(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_included_marker_exists_once(page, target, options):
    text = Path(target).read_text(encoding="utf-8")
    for option in ("start-after", "end-before"):
        if option in options:
            assert text.count(options[option]) == 1, f"{page}: {options[option]!r} in {target}"


def test_the_catalog_page_includes_both_catalog_examples():
    targets = {(target.rsplit("/", 1)[-1], options.get("start-after")) for page, target, options in includes()}
    assert ("example_gptimage_catalog.py", "[START howto_catalog_mapped]") in targets
    assert ("example_gptimage_batch_catalog.py", "[START howto_batch_catalog]") in targets
    assert ("example_gptimage_batch_catalog.py", "[START howto_gallery_catalog]") in targets
