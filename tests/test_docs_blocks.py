"""Every ```python block of README.md and docs/*.md runs as written.

A page's blocks run in order in one namespace, in a fresh Python process whose working
directory is a temporary folder, on the JAX backend. A fragment that uses the reader's
data is preceded by ``<!-- run-with: SETUP -->``: one line of Python (hidden on the page)
that makes small data under the fragment's names; it runs just before the block. A block
preceded by ``<!-- no-run: REASON -->`` is not run (it needs a cluster, a server, a stored
study); the reason is printed with the test's output.
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
NO_RUN = re.compile(r"<!--\s*no-run:\s*(.*?)\s*-->\s*$")
RUN_WITH = re.compile(r"<!--\s*run-with:\s*(.*?)\s*-->\s*$")

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


def blocks_of(page: Path) -> tuple[list[dict], list[str]]:
    """The page's runnable blocks (with line numbers) and the reasons of skipped ones."""
    text = page.read_text()
    runnable, skipped = [], []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        name = str(page.relative_to(ROOT))
        reason, setup = NO_RUN.search(before), RUN_WITH.search(before)
        if reason:
            skipped.append(f"{name}:{line}: {reason.group(1)}")
        else:
            runnable.append(
                {
                    "page": name,
                    "line": line,
                    "setup": setup.group(1) if setup else "",
                    "code": match.group(1),
                }
            )
    return runnable, skipped


PAGES_WITH_BLOCKS = [p for p in PAGES if FENCE.search(p.read_text())]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page, tmp_path):
    runnable, skipped = blocks_of(page)
    for reason in skipped:
        print("not run:", reason)
    if not runnable:
        assert skipped, "a page in PAGES_WITH_BLOCKS has blocks"
        return
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "MPLBACKEND": "Agg",
    }
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


def test_no_run_markers_give_a_reason():
    for page in PAGES:
        for line in page.read_text().splitlines():
            if "no-run" in line and line.lstrip().startswith("<!--"):
                assert NO_RUN.search(line) and NO_RUN.search(line).group(1), (
                    f"{page.name}: {line!r} needs a reason after 'no-run:'"
                )
