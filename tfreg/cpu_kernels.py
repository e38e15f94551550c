"""TensorFlow's CPU kernel choice: oneDNN on by default, whatever the CPU.

TensorFlow's x86 wheels turn their oneDNN kernels on by default only on CPUs with AVX-512 VNNI / BF16 / AMX
(Intel Cascade Lake and newer); elsewhere (AVX2-only AMD EPYC and older Intel) 3-D convolutions and their
gradients run on Eigen's kernels. Measured on a 2-core AVX2 AMD EPYC (benchmarks/README.md, "tfreg and
DeepReg side by side"): a LocalNet training step at 64x64x60, batch 2, took 34 s with Eigen and 10 s with
oneDNN; one 3x3x3 Conv3D forward pass 0.34 s vs 0.10 s. oneDNN's results differ from Eigen's only by
floating-point summation order.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is first imported, so this must run before
``import tensorflow``: importing ``tfreg`` does it (the command-line tools import tfreg first). A value the
user set (``0`` to keep Eigen's kernels) is left alone.
"""

import os
import sys
import warnings

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def default_to_onednn() -> bool:
    """Sets ``TF_ENABLE_ONEDNN_OPTS=1`` unless the user set it or TensorFlow is already imported.

    When TensorFlow was imported first (so the variable can no longer take effect), the user did not choose,
    and TensorFlow runs without oneDNN, warns once with the fix.

    Returns:
        True if this call set the variable, False if it was left as it was.
    """
    if ONEDNN_VARIABLE in os.environ:
        return False
    if "tensorflow" in sys.modules:
        if onednn_enabled() is False:
            warnings.warn(
                "TensorFlow was imported before tfreg and runs without its oneDNN CPU kernels on this CPU (3-D "
                f"convolutions about 3x slower): import tfreg first or set {ONEDNN_VARIABLE}=1 before starting "
                f"Python ({ONEDNN_VARIABLE}=0 keeps the current kernels and silences this)",
                RuntimeWarning,
                stacklevel=2,
            )
        return False
    os.environ[ONEDNN_VARIABLE] = "1"
    return True


def onednn_enabled():
    """Whether the imported TensorFlow uses oneDNN kernels; None if TensorFlow (or this private probe) is absent."""
    module = sys.modules.get("tensorflow")
    if module is None:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow build without the probe: say nothing
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
