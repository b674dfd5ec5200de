"""Every public name is importable and documented with an example (``>>>``).

A class or function needs an example in its own docstring; a module-level constant
needs one in the docstring of the module that defines it, mentioning its name. The
examples themselves run as doctests (``--doctest-modules`` over ``src/``).
"""

import importlib
import importlib.metadata
import inspect
import re
import sys

import pytest

PACKAGES = [
    "tunefleet",
    "tunefleet.keras",
    "tunefleet.keras.compression",
    "tunefleet.tuners",
    "tunefleet.report",
    "tunefleet.fleet",
    "tunefleet.sklearn",
]


def _example_lines(doc: str | None) -> list[str]:
    """The source lines of the doctest examples in ``doc`` (``>>>`` and ``...``)."""
    lines = []
    for line in (doc or "").splitlines():
        stripped = line.strip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            lines.append(stripped[4:])
    return lines


def _defining_module(name: str, obj: object) -> str | None:
    """The tunefleet module that assigns ``name`` (bound to ``obj``) at top level."""
    assignment = re.compile(rf"^{re.escape(name)}\s*(:[^=]*)?=", re.MULTILINE)
    candidates = sorted(
        module_name
        for module_name, module in list(sys.modules.items())
        if (module_name == "tunefleet" or module_name.startswith("tunefleet."))
        and module is not None
        and vars(module).get(name) is obj
    )
    for module_name in candidates:
        try:
            source = inspect.getsource(sys.modules[module_name])
        except (OSError, TypeError):
            continue
        if assignment.search(source):
            return module_name
    return None


def _undocumented(package: str) -> list[str]:
    """``"name: why"`` for each name of ``package.__all__`` lacking an example."""
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        if name == "__version__":
            continue  # test_version
        try:
            obj = getattr(module, name)
        except Exception as error:  # an import error of a lazy name counts as missing
            missing.append(f"{name}: not importable ({type(error).__name__}: {error})")
            continue
        if inspect.isclass(obj) or inspect.isroutine(obj):
            if not _example_lines(obj.__doc__):
                missing.append(f"{name}: no '>>>' example in its docstring")
            continue
        defining = _defining_module(name, obj)
        if defining is None:
            missing.append(f"{name}: constant whose defining module was not found")
            continue
        doc = sys.modules[defining].__doc__
        if not any(re.search(rf"\b{re.escape(name)}\b", line) for line in _example_lines(doc)):
            missing.append(f"{name}: constant not in a '>>>' example of {defining}'s docstring")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_an_example(package):
    missing = _undocumented(package)
    assert not missing, f"{package}: {len(missing)} public names lack an example:\n" + "\n".join(
        f"  {package}.{line}" for line in missing
    )


def test_version_is_the_distribution_version():
    import tunefleet

    assert tunefleet.__version__ == importlib.metadata.version("tunefleet")
