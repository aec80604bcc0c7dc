"""Ship the notebook series inside the package: the settings themselves live in pyproject.toml.

Building a wheel copies ``notebooks/*.ipynb`` into ``localml_kit/_notebooks/`` and the
data files the notebooks read (``data/sentences.txt``) into ``localml_kit/_data/``, so
``localml-kit lab`` and ``localml-kit notebooks`` work from an installed kit. A source
checkout (or an editable install) reads them where they are.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = (("notebooks", "*.ipynb", "_notebooks"), ("data", "sentences.txt", "_data"))


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        for folder, pattern, dest in SHIPPED:
            files = sorted((ROOT / folder).glob(pattern))
            if not files:
                raise SystemExit(f"no {folder}/{pattern} to ship: build from a full checkout")
            target = Path(self.build_lib) / "localml_kit" / dest
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": BuildPy})
