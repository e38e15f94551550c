"""tfreg: deep-learning medical image registration on TensorFlow 2.21 and Keras 3 (DeepReg's successor).

Layers, each importing only from those below it: compat -> cli -> engine -> data -> models -> layers ->
losses -> ops, with registry and config beside them (compat: DeepReg's import paths, which nothing in tfreg
imports). ops, losses, layers and models use ``keras.ops`` only and run
on any Keras 3 backend; data and engine use TensorFlow. Beside them, without TensorFlow or Keras:
metrics (NumPy/SciPy metrics on arrays) and evaluation (file-level evaluation, ``tfreg_evaluate``), which
cli and engine may import.
"""

from tfreg.cpu_kernels import default_to_onednn

default_to_onednn()  # before anything imports TensorFlow (see tfreg.cpu_kernels)

__version__ = "0.1.0"
