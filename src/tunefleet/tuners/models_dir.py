"""Each study's saved models in a folder of its own.

A tuner saves its trials' models under ``directory/project_name``. Several studies may
name the same project folder (a script run as it is, the same script through
``tunefleet tune --storage other.db``, another ``study_name``): their trial numbers
overlap, so they must not share ``trial_0005``. The first study to save there claims the
project folder (a marker file holding a digest of its storage URL and name); another study
gets ``studies/<name>-<digest>`` inside it. The study records the folder it got
(``MODELS_ATTR``, relative to the project folder), so readers find its models.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile

#: The file in a model folder that names (by digest) the study whose models it holds.
MARKER = ".tunefleet-study"


def study_digest(storage_url: str | None, study_name: str) -> str:
    """A digest that names one study of one storage (passwords in the URL stay out of files).

    Example:

    >>> len(study_digest("sqlite:///a.db", "s")), study_digest(None, "s") == study_digest(None, "s")
    (16, True)
    """
    return hashlib.sha256(f"{storage_url}#{study_name}".encode()).hexdigest()[:16]


def claim_models_dir(project_dir: str, study_name: str, digest: str) -> str:
    """The folder (relative to ``project_dir``) where the study ``digest`` saves models.

    ``""`` (the project folder itself) when it is free or already this study's; else
    ``studies/<study_name>-<digest[:8]>``, claimed for this study.

    Example:

    >>> import tempfile
    >>> project = tempfile.mkdtemp()
    >>> claim_models_dir(project, "a", "1" * 16), claim_models_dir(project, "a", "1" * 16)
    ('', '')
    >>> claim_models_dir(project, "b", "2" * 16)
    'studies/b-22222222'
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name)[:40] or "study"
    for relative in ("", os.path.join("studies", f"{slug}-{digest[:8]}")):
        if _claim(os.path.join(project_dir, relative), digest):
            return relative
    raise FileExistsError(
        f"{os.path.join(project_dir, 'studies')}: the model folder of study {study_name!r} "
        "belongs to another study; delete that folder or choose another project_name."
    )


def _claim(folder: str, digest: str) -> bool:
    """Whether ``folder`` is (now) the study ``digest``'s: claimed atomically if free."""
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, MARKER)
    fd, written = tempfile.mkstemp(dir=folder, prefix=".claim-")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(digest)
        os.link(written, marker)  # fails if another study (or process) claimed it first
        return True
    except FileExistsError:
        with open(marker) as held:
            return held.read().strip() == digest
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(written)
