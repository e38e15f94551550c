"""Choice of the ``tf.distribute`` strategy (``--strategy``) and the checks that go with it.

- ``default``: one device (``tf.distribute.get_strategy()``).
- ``mirrored``: ``MirroredStrategy`` over every visible GPU, or over every logical CPU device when there
  is no GPU (how the tests exercise it on a CPU machine).
- ``multiworker``: ``MultiWorkerMirroredStrategy`` configured from the ``TF_CONFIG`` environment
  variable, one process per machine; Keras 3's ``fit`` does not run under it (keras-team/keras#20585),
  so the engine trains with its own loop there (:mod:`tfreg.engine.custom_loop`).
- ``auto`` (default): ``mirrored`` when more than one GPU is visible, else ``default``.

With several replicas, BatchNormalization layers use synchronised statistics so that the replicas together
normalise over the global batch, as one device would: the model is built with them
(``build_model(..., synchronized_bn=True)``), or :func:`synchronize_batch_norm` switches a built one.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Tuple

import tensorflow as tf

from tfreg.layers.normalization import batch_norm_layers

STRATEGIES: Tuple[str, ...] = ("auto", "default", "mirrored", "multiworker")


def strategy_kind(name: str) -> str:
    """Resolve ``auto`` to ``default`` or ``mirrored``; validate the name."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {list(STRATEGIES)}, got {name!r}")
    if name == "auto":
        return "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    return name


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The strategy for ``--strategy name`` (see the module docstring).

    Raises:
        ValueError: an unknown name, or ``multiworker`` without a usable ``TF_CONFIG``.
    """
    kind = strategy_kind(name)
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_tf_config() -> dict:
    """Parse and check ``TF_CONFIG`` for a multi-worker run; returns it as a dict.

    ``TF_CONFIG`` is a JSON object ``{"cluster": {"worker": ["host:port", ...], ["chief": ["host:port"]]},
    "task": {"type": "worker" | "chief", "index": i}}``, one per process, the same cluster everywhere.

    Raises:
        ValueError: naming what is missing or wrong (the variable itself, ``cluster``, the ``cluster.worker``
            list, ``task.type``, ``task.index`` or an index outside the task type's list).
    """
    text = os.environ.get("TF_CONFIG")
    example = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    if not text:
        raise ValueError(f"--strategy multiworker needs the TF_CONFIG environment variable, e.g. {example}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}): {text!r}") from None
    # each check below names one missing piece, so that a hand-written TF_CONFIG can be fixed in one go
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object like {example}, got {text!r}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict):
        raise ValueError(f"TF_CONFIG has no cluster object (cluster.worker lists the workers' host:port): {text!r}")
    for role, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise ValueError(f"TF_CONFIG cluster.{role} must be a list of 'host:port' strings, got {addresses!r}")
    if not cluster.get("worker") and not cluster.get("chief"):
        raise ValueError(f"TF_CONFIG must list the workers under cluster.worker (a non-empty list), got {text!r}")
    task = config.get("task")
    if not isinstance(task, dict):
        raise ValueError(f"TF_CONFIG has no task object ({{'type': 'worker', 'index': i}} of this process): {text!r}")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in ("worker", "chief"):
        raise ValueError(f"TF_CONFIG task.type must be 'worker' or 'chief', got {task_type!r}")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(
            f"TF_CONFIG task.index must be an int (this process's place in cluster.{task_type}), got {index!r}"
        )
    count = len(cluster.get(task_type) or [])
    if not 0 <= index < count:
        raise ValueError(
            f"TF_CONFIG task.index {index} is outside cluster.{task_type}, which lists {count} address(es)"
        )
    return config


def _is_chief_task(task_type: Optional[str], task_id: Optional[int], cluster: dict) -> bool:
    """The chief is the ``chief`` task, or worker 0 when the cluster has no ``chief`` (TensorFlow's rule)."""
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and not cluster.get("chief")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes logs and checkpoints (always, unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    # An empty cluster spec (TF_CONFIG unset) is a single local worker, which is its own chief.
    cluster = resolver.cluster_spec().as_dict()
    if not cluster:
        return True
    return _is_chief_task(resolver.task_type, resolver.task_id, cluster)


def check_batch_size(
    batch_size: int, strategy: tf.distribute.Strategy, key: str = "train.preprocess.batch_size"
) -> int:
    """The per-replica batch size; the global ``batch_size`` must divide evenly between the replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas != 0:
        raise ValueError(
            f"{key} = {batch_size} is not divisible by the {replicas} replicas of the {type(strategy).__name__}: "
            f"use a multiple of {replicas}"
        )
    return batch_size // replicas


def synchronize_batch_norm(model, strategy: tf.distribute.Strategy) -> int:
    """Switch every ``BatchNormalization`` of an already built ``model`` to global-batch statistics when
    there are several replicas (otherwise each replica would normalise over its own share only).

    Prefer building the model synchronized in the first place, through the public constructor argument:
    ``build_model(config, loader, registry, synchronized_bn=strategy.num_replicas_in_sync > 1)`` (see
    :mod:`tfreg.layers.normalization`); this function then finds nothing to switch and returns 0. It stays
    for models built outside that context (a user's own), and sets the layers' public ``synchronized``
    attribute, which they read at each call.

    Returns:
        How many layers were switched (0 with one replica: nothing is changed).
    """
    if strategy.num_replicas_in_sync <= 1:
        return 0
    count = 0
    for layer in batch_norm_layers(model):
        if not layer.synchronized:
            layer.synchronized = True
            count += 1
    return count


__all__ = [
    "STRATEGIES",
    "strategy_kind",
    "make_strategy",
    "check_tf_config",
    "is_chief",
    "check_batch_size",
    "synchronize_batch_norm",
]
