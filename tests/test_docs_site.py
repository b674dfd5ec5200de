"""The documentation site builds with warnings as errors, and documents every public name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tunefleet

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "docs" / "api"


def api_reference_text() -> str:
    return "\n".join(p.read_text() for p in sorted(API_DIR.glob("*.md")))


def test_every_public_name_is_in_the_api_reference():
    text = api_reference_text()
    documented = set(re.findall(r"^::: [\w.]*?\.(\w+)$", text, flags=re.M))
    documented |= set(re.findall(r"`tunefleet\.(__\w+__)`", text))
    missing = sorted(set(tunefleet.__all__) - documented)
    assert not missing, f"public names missing from docs/api/*.md: {missing}"


def test_the_site_changelog_is_the_root_changelog_with_site_links():
    """docs/changelog.md is what the site shows; CHANGELOG.md the same text for the repository."""
    site = (ROOT / "docs" / "changelog.md").read_text()
    root = (ROOT / "CHANGELOG.md").read_text()
    as_root = re.sub(r"\]\((?!https?:|#)([^)]+)\)", r"](docs/\1)", site)
    assert root == as_root, "CHANGELOG.md and docs/changelog.md differ beyond their links"


@pytest.mark.slow
def test_site_builds_strict_and_renders_search_parameters(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python", reason="pip install '.[docs]'")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [mkdocs, "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    searches = (tmp_path / "site" / "api" / "searches" / "index.html").read_text()
    for parameter in ("min_resource", "max_resource", "factor", "population_size"):
        assert parameter in searches, f"{parameter} is not rendered in the API reference"
