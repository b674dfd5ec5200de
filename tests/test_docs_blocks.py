"""Every ```python block of README.md and docs/*.md runs, as the page shows it.

A page's blocks run in order in one namespace, in a fresh Python process whose working
directory is a temporary folder, on the JAX backend. HTML comments (hidden on the page)
on the lines just above a block say how to run it:

* ``<!-- run-with: SETUP -->``: one line of Python run just before the block, to make
  what the fragment takes from the reader: small data under the fragment's names, a
  trained model, a server's address. Several such lines run in order. The helpers of
  ``tests/docs_setup.py`` (on the path) make the longer things.
* ``<!-- run-as: OLD => NEW -->``: the block runs with every occurrence of the text OLD
  replaced by NEW (plain text, not a regex; several lines apply in order), so that a
  block that teaches a real workload runs a small one (``n_iter=20 => n_iter=1``,
  ``epochs=100 => epochs=1``) or reaches a local server instead of the reader's
  (``"postgresql://...@db.internal/tune" => STORAGE``). An OLD that is not in its block
  fails ``test_run_as_texts_are_in_their_blocks`` (and the page's run), so a
  substitution cannot go stale silently when the page changes.
* ``<!-- no-run: REASON -->``: the block is not run; the reason (what it needs, or what
  running it would cost) is printed with the test's output. Such a block may keep its
  ``run-with``/``run-as`` lines, ready for the day it runs; their texts are checked too.

A setup reads ``DOCS_POSTGRES_URL`` for a fresh database on the session's throwaway
PostgreSQL server (``tests/postgres.py``; the page is skipped where PostgreSQL is not
installed, and fails under CI, as the storage tests are).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
COMMENT = re.compile(r"^<!--\s*(no-run|run-with|run-as):\s*(.*?)\s*-->[ \t]*$")
RUN_AS = re.compile(r"^(.*?) => (.*)$", re.S)

RUNNER = r"""
import json, sys, traceback
blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
for block in blocks:
    try:
        where = f"{block['page']}:{block['line']}"
        exec(compile(block["setup"], f"{where} (run-with)", "exec"), namespace)
        exec(compile(block["code"], where, "exec"), namespace)
    except BaseException:
        print(f"BLOCK FAILED {block['page']}:{block['line']}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print(f"BLOCK OK {block['page']}:{block['line']}", flush=True)
"""


def directives(text: str, start: int) -> list[tuple[str, str]]:
    """The ``(kind, value)`` comments on the lines just above offset ``start``, top first."""
    lines = text[:start].rstrip("\n").split("\n")
    found = []
    while lines and (match := COMMENT.match(lines[-1])):
        found.insert(0, (match.group(1), match.group(2)))
        lines.pop()
    return found


def blocks_of(page: Path) -> tuple[list[dict], list[str]]:
    """The page's runnable blocks (with line numbers) and the reasons of skipped ones.

    Raises ``ValueError`` for a ``run-as`` whose OLD text is not in its block.
    """
    text = page.read_text()
    name = str(page.relative_to(ROOT))
    runnable, skipped = [], []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        code, setup, reason = match.group(1), [], None
        for kind, value in directives(text, match.start()):
            if kind == "no-run":
                reason = value
            elif kind == "run-with":
                setup.append(value)
            else:
                old, new = RUN_AS.match(value).groups()
                if old not in code:
                    raise ValueError(f"{name}:{line}: run-as text {old!r} is not in the block")
                code = code.replace(old, new)
        if reason is not None:
            skipped.append(f"{name}:{line}: {reason}")
        else:
            runnable.append({"page": name, "line": line, "setup": "\n".join(setup), "code": code})
    return runnable, skipped


PAGES_WITH_BLOCKS = [p for p in PAGES if FENCE.search(p.read_text())]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page, tmp_path, request):
    runnable, skipped = blocks_of(page)
    for reason in skipped:
        print("not run:", reason)
    if not runnable:
        assert skipped, "a page in PAGES_WITH_BLOCKS has blocks"
        return
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
        "MPLBACKEND": "Agg",
    }
    if any("DOCS_POSTGRES_URL" in block["setup"] for block in runnable):
        env["DOCS_POSTGRES_URL"] = request.getfixturevalue("postgres_server").create_database()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(runnable),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert done.stdout.count("BLOCK OK") == len(runnable)


def test_run_as_texts_are_in_their_blocks():
    for page in PAGES_WITH_BLOCKS:
        blocks_of(page)  # raises for a run-as whose text the block no longer has


def test_markers_are_well_formed():
    for page in PAGES:
        for line in page.read_text().splitlines():
            if re.match(r"<!--\s*(no-run|run-with|run-as)", line.lstrip()):
                match = COMMENT.match(line)
                assert match and match.group(2), f"{page.name}: {line!r} needs a value"
                if match.group(1) == "run-as":
                    assert RUN_AS.match(match.group(2)), f"{page.name}: {line!r}: OLD => NEW"
