"""``deepreg.predict``: :func:`predict` with DeepReg's keyword arguments (``gpu``, ``gpu_allow_growth``,
``ckpt_path``, ``split``, ``batch_size``, ``exp_name``, ``config_path``, ``num_workers``, ``save_nifti``,
``save_png``, ``log_dir``); ``main`` is the ``deepreg_predict`` command line."""

from tfreg.cli.predict import main
from tfreg.engine.predict import predict

__all__ = ["main", "predict"]
