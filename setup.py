"""Installs ``tunefleet-keras-backend.pth`` into site-packages with the package.

Everything else is declared in ``pyproject.toml``. A ``.pth`` file must sit at the top of
site-packages, which ``pyproject.toml`` cannot express: this ``build_py`` copies it to the
top of the build (the wheel's root). See ``src/_tunefleet_keras_backend.py``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "tunefleet-keras-backend.pth"


class BuildPyWithPth(build_py):
    """``build_py`` that also puts the start-up ``.pth`` file at the wheel's root."""

    def run(self) -> None:
        super().run()
        self.copy_file(str(Path("src") / PTH), str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
