"""Guards for the promise that the numerical core runs without TensorFlow (issue #11, item 5).

1. Under ``KERAS_BACKEND=jax``, building losses, attention layers and backbones through ``REGISTRY``
   imports neither TensorFlow nor SimpleITK nor h5py (the registry imports only the modules of the
   category asked for; the data modules, which bring those, are not among them).
2. No module under ``tfreg/`` uses Keras' private API (``keras.src`` or the private layer walks), which
   changes without notice between Keras releases.

A Keras backend is chosen once per process, so check 1 runs in its own interpreter.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# The packages the core must not import at run time.
FORBIDDEN = ("tensorflow", "SimpleITK", "h5py")

# Runs in the subprocess. A finder placed first on sys.meta_path sees every import of a FORBIDDEN package
# that is not yet in sys.modules and records who asked for it: the chain of modules executing at that
# moment (outermost first, with line numbers), so that a failure names the import path to cut. h5py is
# refused as if it were not installed: Keras itself imports it when it is present (optionally, from
# keras.src.legacy.saving.legacy_h5_format), which would hide a later `import h5py` in tfreg from the
# finder; refusing it makes every attempt visible.
_PROBE = r"""
import importlib.abc
import json
import sys

FORBIDDEN = {forbidden!r}
attempts = []


def _chain():
    frame = sys._getframe(2)
    chain = []
    while frame is not None:
        name = frame.f_globals.get("__name__", "?")
        if not name.startswith("importlib") and name != __name__:
            chain.append(f"{{name}}:{{frame.f_lineno}}")
        frame = frame.f_back
    return chain[::-1]


class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in FORBIDDEN and fullname not in sys.modules:
            attempts.append({{"module": fullname, "chain": _chain()}})
            if fullname.split(".")[0] == "h5py":
                raise ModuleNotFoundError("h5py refused by the test", name=fullname)
        return None


sys.meta_path.insert(0, Recorder())

import keras
from tfreg.registry import REGISTRY

assert keras.backend.backend() == "jax", keras.backend.backend()
built = []
error = None
try:
    for name in ["lncc", "gncc", "gmi", "ssd", "dice", "cross-entropy", "bending", "gradient", "mind", "rigidity"]:
        built.append(type(REGISTRY.build_loss({{"name": name}})).__name__)
    for name in REGISTRY.names("attention_class"):
        built.append(type(REGISTRY.build_attention({{"name": name}})).__name__)
    common = {{"image_size": (8, 8, 8), "out_channels": 3, "num_channel_initial": 2,
              "out_kernel_initializer": "zeros", "out_activation": None}}
    for config in [
        {{"name": "local", "extract_levels": (0, 1), **common}},
        {{"name": "global", "extract_levels": (0, 1), **common}},
        {{"name": "unet", "depth": 1, **common}},
    ]:
        backbone = REGISTRY.build_backbone(config)
        backbone(keras.ops.zeros((1, 8, 8, 8, 2)))  # build and run it once
        built.append(type(backbone).__name__)
    # The model classes and the config package are TensorFlow-free too (the engine is not).
    built.extend(REGISTRY.get("model_class", name).__name__ for name in REGISTRY.names("model_class"))
    import tfreg.config  # noqa: F401
except Exception:  # reported with the import chains below
    import traceback

    error = traceback.format_exc()
print("RESULT " + json.dumps({{
    "built": built,
    "error": error,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN),
    "attempts": attempts,
    "tfreg_modules": sorted(m for m in sys.modules if m.startswith("tfreg")),
}}))
"""


def _run_probe():
    pytest.importorskip("jax", reason="jax[cpu] is a test extra: pip install -e .[test]")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    # -c puts the working directory (the repository root) first on sys.path: this checkout's tfreg is used.
    code = _PROBE.format(forbidden=FORBIDDEN)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"the JAX probe failed:\n{(proc.stdout + proc.stderr)[-6000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def _describe(attempts):
    return "\n".join(f"  {a['module']} imported via:\n    " + "\n    -> ".join(a["chain"]) for a in attempts)


@pytest.mark.jax
def test_registry_core_path_imports_no_tensorflow_simpleitk_h5py():
    result = _run_probe()
    assert result["error"] is None, f"building failed:\n{result['error']}\n{_describe(result['attempts'])}"
    # Everything asked for was built: 10 losses, the attention layers, 3 backbones, and the model classes found.
    assert len(result["built"]) >= 10 + 3 + 3 + 4, result["built"]
    assert {"LocalNet", "GlobalNet", "UNet", "DDFModel"} <= set(result["built"])
    # TensorFlow and SimpleITK: not imported at all, by anyone.
    loaded = [m for m in result["loaded"] if m.split(".")[0] in ("tensorflow", "SimpleITK")]
    offending = [a for a in result["attempts"] if a["module"].split(".")[0] in ("tensorflow", "SimpleITK")]
    assert not loaded and not offending, f"imported {loaded}:\n{_describe(offending)}"
    # h5py: Keras' own optional import is allowed (it runs without h5py); an import from tfreg is not.
    # The importer is the innermost module of the chain.
    h5py_from_tfreg = [
        a
        for a in result["attempts"]
        if a["module"].split(".")[0] == "h5py" and a["chain"] and a["chain"][-1].startswith("tfreg")
    ]
    assert not h5py_from_tfreg, f"tfreg imports h5py:\n{_describe(h5py_from_tfreg)}"
    # And the data package (TensorFlow pipelines and image readers) was not loaded on this path.
    assert not [m for m in result["tfreg_modules"] if m.startswith(("tfreg.data", "tfreg.engine"))], result[
        "tfreg_modules"
    ]


# ---------------------------------------------------------------------- private Keras API
# Patterns of Keras' private API. `keras.src` is Keras' implementation package (its public API is
# `keras.*`); `_flatten_layers` is the private recursive layer walk.
PRIVATE_KERAS = [
    (re.compile(r"\bkeras\.src\b"), "keras.src (import from the public keras.* API instead)"),
    (re.compile(r"\b_flatten_layers\b"), "Layer._flatten_layers (private layer walk)"),
]


def _private_keras_uses():
    root = os.path.join(REPO_ROOT, "tfreg")
    found = []
    for directory, _, files in os.walk(root):
        for filename in sorted(files):
            if not filename.endswith(".py"):
                continue
            path = os.path.join(directory, filename)
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    for pattern, what in PRIVATE_KERAS:
                        if pattern.search(line):
                            found.append(f"{os.path.relpath(path, REPO_ROOT)}:{number}: {what}: {line.strip()}")
    return found


def test_no_private_keras_api_in_tfreg():
    found = _private_keras_uses()
    assert not found, "private Keras API used in tfreg/:\n" + "\n".join(found)


def test_private_keras_patterns_match():
    # The patterns themselves: each one matches the use it names and not a public look-alike.
    assert PRIVATE_KERAS[0][0].search("from keras.src.losses.loss import scale_loss_for_distribution")
    assert not PRIVATE_KERAS[0][0].search("from keras import losses  # keras.srcs")
    assert PRIVATE_KERAS[1][0].search("for layer in model._flatten_layers(include_self=False):")
    assert not PRIVATE_KERAS[1][0].search("model.flatten_layers_public()")
