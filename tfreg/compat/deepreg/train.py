"""``deepreg.train``: :func:`train` with DeepReg's keyword arguments (``gpu``, ``config_path``,
``gpu_allow_growth``, ``ckpt_path``, ``exp_name``, ``log_dir``, ``max_epochs``, ``num_workers``), plus
tfreg's ``strategy``; it returns ``(model, log folder)``. ``main`` is the ``deepreg_train`` command line."""

from tfreg.cli.train import main
from tfreg.engine.train import train

__all__ = ["main", "train"]
