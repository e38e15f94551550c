"""One home for loading a benchmarks/ script as a module in tests (benchmarks/ is not a package)."""

import importlib.util
import sys

from tests.conftest import REPO_ROOT


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as module ``name``, with benchmarks/ importable as its sibling imports expect."""
    folder = str(REPO_ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
