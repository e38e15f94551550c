"""Process-level settings of the command lines: visible GPUs, GPU memory growth, CPU threads.

These are DeepReg's ``-g``, ``-gr`` and ``--num_workers`` flags, with two DeepReg bugs fixed (contract
§11): ``--gpu_allow_growth`` is a switch that really turns memory growth on, and ``--num_workers`` really
limits TensorFlow's thread pools (DeepReg only touched environment variables when it was <= 0).
"""

from __future__ import annotations

import logging
import os
from typing import Optional

logger = logging.getLogger(__name__)


def configure_devices(gpu: Optional[str] = None, gpu_allow_growth: bool = False, num_workers: int = 0) -> None:
    """Apply the device flags before TensorFlow places anything.

    Args:
        gpu: value for ``CUDA_VISIBLE_DEVICES`` (``"0"``, ``"0,1"``; ``""`` hides every GPU); None leaves
            the environment alone.
        gpu_allow_growth: allocate GPU memory on demand instead of reserving it all.
        num_workers: > 0 limits TensorFlow's intra- and inter-op thread pools to this many threads;
            0 keeps TensorFlow's default (all cores).

    TensorFlow reads ``CUDA_VISIBLE_DEVICES`` and the thread settings when its runtime starts; in a
    process where it already started (a notebook, a test session), a setting that can no longer be
    applied is reported with a warning instead of failing the run.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"--num_workers must be an int >= 0 (0: all cores), got {num_workers!r}")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import tensorflow as tf

    if gpu_allow_growth:
        for device in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(device, True)
            except RuntimeError as err:  # the GPU was already initialised in this process
                logger.warning("could not enable memory growth on %s: %s", device.name, err)
    if num_workers > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(num_workers)
            tf.config.threading.set_inter_op_parallelism_threads(num_workers)
        except RuntimeError as err:
            if (
                tf.config.threading.get_intra_op_parallelism_threads() != num_workers
                or tf.config.threading.get_inter_op_parallelism_threads() != num_workers
            ):
                logger.warning(
                    "could not limit TensorFlow to %d threads (runtime already started): %s", num_workers, err
                )


__all__ = ["configure_devices"]
