"""``tfreg_train`` / ``deepreg_train``: train a registration model from YAML configs (DeepReg's ``train``).

Everything that can go wrong is checked before the first step and before anything is written: the
configs (every error at once), ``--ckpt_path``, the log folder, the data, the model for the data's
shapes, the batch size against the replicas, and the checkpoint against the model. Then::

    <log_dir>/<exp_name>/
        config.yaml           the merged, upgraded, validated config of this run
        train/, validation/   TensorBoard event files (DeepReg's metric names)
        save/ckpt-<epoch>.*   checkpoints every save_period epochs and after the last one
        save/config.yaml      the config beside the checkpoints: predict defaults to it and checks a
                              config given with -c against it (docs/safety.md)
        .tfreg-incomplete     until the first checkpoint: the process writing the folder. A run that
                              fails before then removes what it wrote; one killed before then leaves
                              the marker, and a rerun under the same name reuses the folder
                              (:func:`is_failed_start`)

Keras' ``fit`` reads one batch from its own iterator to build its step function before training
starts; with a reshuffling dataset, runs under different strategies therefore do not see identical
batch orders (harmless, noted for anyone comparing runs).

Resuming from ``.../save/ckpt-N`` restores the model and the optimizer state and continues at epoch N
up to ``train.epochs`` (or ``--max_epochs``). Unlike DeepReg, no hidden training step runs before the
restore (variables are created by an inference call on zeros).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras

from tfreg.config import apply_max_epochs, load_configs_with_provenance, save_config, validate_config
from tfreg.config.defaults import DEFAULT_TRAINER
from tfreg.data.loaders.base import steps_per_epoch
from tfreg.engine.build import build_loader, build_model, check_label_channels, create_variables, split_dataset
from tfreg.engine.checkpoint import (
    SAVE_DIR,
    CheckpointError,
    available_checkpoints,
    make_checkpoint,
    parse_ckpt_path,
    restore_checkpoint,
    restore_parts,
)
from tfreg.engine.console import CONSOLE_METRICS, hint
from tfreg.engine.deepreg_checkpoint import (
    adapt_config,
    check_init_parts,
    inspect_checkpoint,
    load_deepreg_checkpoint,
)
from tfreg.engine.mixed_precision import mixed_precision_policy
from tfreg.engine.runtime import configure_devices
from tfreg.engine.strategy import check_batch_size, is_chief, make_strategy
from tfreg.engine.trainers.base import TrainingRun, is_multiworker
from tfreg.file_safety import (
    INCOMPLETE_MARKER,
    clean_stale_scratch,
    describe_incomplete,
    incomplete_state,
    mark_incomplete,
)

logger = logging.getLogger(__name__)

#: The training config's name beside the checkpoints (``<exp>/save/config.yaml``).
TRAINED_CONFIG = "config.yaml"
#: The command named in the log folder's incomplete marker.
TOOL = "tfreg_train"
#: Everything a training run writes in its log folder (a killed start's leftovers hold nothing else).
RUN_ENTRIES = ("config.yaml", "train", "validation", SAVE_DIR, INCOMPLETE_MARKER)


def default_exp_name() -> str:
    """DeepReg's default experiment name: the current time, ``%Y%m%d-%H%M%S``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def experiment_path(log_dir: str, exp_name: str) -> str:
    """``<log_dir>/<exp_name>``, checked before anything is built or written.

    Raises:
        ValueError: ``exp_name`` is absolute or leads outside ``log_dir`` (``../x``): every output of a
            run stays under ``--log_dir``.
        FileExistsError: ``log_dir`` or a folder on the way to the experiment folder is a file.
    """
    root = os.path.expanduser(log_dir)
    if os.path.isabs(exp_name) or os.path.normpath(exp_name).split(os.sep)[0] == os.pardir:
        raise ValueError(
            f"--exp_name {exp_name!r} must be a relative path inside --log_dir {log_dir!r} (it is absolute or "
            "starts with '..'); to write elsewhere, change --log_dir"
        )
    path = os.path.join(root, exp_name)
    parts = os.path.normpath(path).split(os.sep)
    for end in range(1, len(parts) + 1):
        prefix = os.sep.join(parts[:end]) or os.sep
        if os.path.lexists(prefix) and not os.path.isdir(prefix):
            what = "--log_dir" if os.path.normpath(prefix) == os.path.normpath(root) else "the experiment path"
            raise FileExistsError(f"{what} {prefix} is a file, not a folder: logs cannot be written under it")
    return path


def check_log_dir(log_dir: str, exp_name: str, ckpt_path: Optional[str] = None) -> str:
    """``<log_dir>/<exp_name>`` (:func:`experiment_path`), refusing an existing non-empty folder (results
    would mix).

    Resuming into the folder of the checkpoint itself (``-k logs/exp/save/ckpt-3 -l exp``) is allowed: the
    run continues that experiment. So is a folder left by a run that was killed before its first
    checkpoint (:func:`is_failed_start`): it holds nothing that could be resumed, and it is emptied when the
    new run starts writing.
    """
    path = experiment_path(log_dir, exp_name)
    clean_stale_scratch(path)  # a killed run's half-written files are not results
    if os.path.isdir(path) and os.listdir(path):
        if ckpt_path and os.path.commonpath([os.path.abspath(ckpt_path), os.path.abspath(path)]) == os.path.abspath(
            path
        ):
            return path
        state = incomplete_state(path)
        if state == "running":
            raise FileExistsError(
                f"log folder {path} is being written by {describe_incomplete(path)}, which has not saved a "
                "checkpoint yet: choose another --exp_name (-l) or --log_dir (if that run is no longer running, "
                "remove the folder)"
            )
        if state == "abandoned":
            checkpoints = available_checkpoints(os.path.join(path, SAVE_DIR))
            others = sorted(set(os.listdir(path)) - set(RUN_ENTRIES))
            if not checkpoints and not others:
                return path
            found = (
                f"its checkpoint {checkpoints[-1]} (resume with -k {checkpoints[-1]})"
                if checkpoints
                else f"files tfreg_train does not write: {others}"
            )
            raise FileExistsError(
                f"log folder {path} was left by a run that stopped before it finished starting "
                f"({describe_incomplete(path)}), but it holds {found}: it is not reused; choose another "
                "--exp_name (-l) or --log_dir, or remove it"
            )
        raise FileExistsError(
            f"log folder {path} already exists and is not empty: choose another --exp_name (-l) or --log_dir, "
            "or remove it"
        )
    return path


def is_failed_start(path: str) -> bool:
    """Whether ``path`` holds only what a training run writes, marked incomplete by a process of this machine
    that is gone (killed before its first checkpoint: ``kill -9``, out of memory, a crash in native code),
    and no checkpoint. Such a folder is emptied and reused by the next run given its name."""
    return (
        os.path.isdir(path)
        and incomplete_state(path) == "abandoned"
        and not available_checkpoints(os.path.join(path, SAVE_DIR))
        and set(os.listdir(path)) <= set(RUN_ENTRIES)
    )


def train(
    gpu: Optional[str] = None,
    config_path: Union[str, Sequence[str]] = (),
    gpu_allow_growth: bool = False,
    ckpt_path: str = "",
    exp_name: str = "",
    log_dir: str = "logs",
    max_epochs: int = -1,
    num_workers: int = 0,
    strategy: str = "auto",
    verbose: Optional[int] = None,
    console_metrics: str = "losses",
    registry=None,
    callbacks: Optional[Sequence[keras.callbacks.Callback]] = None,
) -> Tuple[keras.Model, str]:
    """Train a registration model (DeepReg's ``deepreg.train.train`` signature, plus ``strategy``).

    Args:
        gpu: ``CUDA_VISIBLE_DEVICES`` value; None leaves it alone, ``""`` runs on the CPU.
        config_path: one YAML path or several, merged in order (the later file wins).
        gpu_allow_growth: allocate GPU memory on demand.
        ckpt_path: ``.../save/ckpt-N`` to resume from (model and optimizer state; training continues at
            epoch N); ``""`` starts from scratch.
        exp_name: folder name under ``log_dir``; default a timestamp.
        log_dir: root of the log folders.
        max_epochs: > 0 overrides ``train.epochs`` (and caps ``save_period``).
        num_workers: > 0 limits TensorFlow to that many CPU threads; 0 uses all cores.
        strategy: ``auto``, ``default``, ``mirrored`` or ``multiworker`` (:mod:`tfreg.engine.strategy`).
        verbose: progress output (0 silent, 1 a progress bar per epoch, 2 one line per epoch); default 1 when
            standard output is a terminal, else 2 (:mod:`tfreg.engine.console`).
        console_metrics: what the progress output shows: ``"losses"`` (the total loss and each loss term, with
            their ``val_`` values) or ``"all"`` (every logged metric: image, label and field min/mean/max, TRE,
            weighted terms). TensorBoard gets every metric either way.
        registry: where components are looked up (default ``tfreg.registry.REGISTRY``).
        callbacks: extra Keras callbacks for ``fit`` (e.g. early stopping, timing); not supported with
            ``strategy="multiworker"``, whose custom loop has no callback hooks.

    Returns:
        ``(model, log folder)``.

    Raises:
        ConfigError, CheckpointError, FileExistsError, DataNotFoundError, ValueError: before training
        starts, each naming the key, path or argument at fault.
    """
    if registry is None:
        from tfreg.registry import REGISTRY as registry
    if console_metrics not in CONSOLE_METRICS:
        raise ValueError(f"console_metrics must be one of {list(CONSOLE_METRICS)}, got {console_metrics!r}")
    if verbose is not None and (isinstance(verbose, bool) or verbose not in (0, 1, 2)):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got {verbose!r}")
    configure_devices(gpu, gpu_allow_growth, num_workers)
    paths: List[str] = [config_path] if isinstance(config_path, (str, os.PathLike)) else list(config_path)
    if not paths:
        raise ValueError("config_path: give at least one YAML config file (-c/--config_path)")
    config, provenance = load_configs_with_provenance(paths)
    if ckpt_path and inspect_checkpoint(ckpt_path) is not None:
        raise CheckpointError(
            f"--ckpt_path {ckpt_path} is a DeepReg checkpoint: training cannot resume from it (its optimizer state "
            "is TF 2.3 Keras 2's); start from its weights with train.init_from: {path: ..., parts: [backbone]}"
        )
    ckpt_prefix, initial_epoch = parse_ckpt_path(ckpt_path) if ckpt_path else (None, 0)
    config = apply_max_epochs(config, max_epochs)
    config = validate_config(config, provenance, registry=registry)
    deepreg_sources = _adapt_to_deepreg_sources(config)
    epochs = int(config["train"]["epochs"])
    if initial_epoch >= epochs:
        raise ValueError(
            f"--ckpt_path {ckpt_path} was saved after epoch {initial_epoch}, and train.epochs is {epochs}: nothing "
            "is left to train (raise train.epochs or --max_epochs)"
        )
    exp_path = check_log_dir(log_dir, exp_name or default_exp_name(), ckpt_prefix)

    dist = make_strategy(strategy)
    trainer = build_trainer(config["train"], dist, registry)
    if callbacks and not trainer.supports_callbacks:
        raise ValueError(
            f"callbacks are not supported by trainer {type(trainer).__name__} (tfreg's own loop, used for "
            "train.trainer 'loop'/'alternating' and under strategy='multiworker', has no callback hooks)"
        )
    batch_size = int(config["train"]["preprocess"]["batch_size"])
    check_batch_size(batch_size, dist)
    train_loader = build_loader(config, "train", registry, required=True)
    valid_loader = build_loader(config, "valid", registry)
    check_voxels(train_loader, valid_loader)
    for split, loader in (("train", train_loader), ("valid", valid_loader)):
        check_label_channels(config, loader, split, registry)
    init_from = config["train"].get("init_from")
    mixed = bool(config["train"].get("mixed_precision", False))
    if mixed and not trainer.supports_mixed_precision:  # e.g. the loop trainer chosen for multiworker
        raise ValueError(
            f"train.mixed_precision needs a trainer with loss scaling ('fit' or 'progressive'); "
            f"{type(trainer).__name__} has none"
        )
    with mixed_precision_policy(mixed), dist.scope():
        # several replicas: BatchNormalization normalises over the global batch (public constructor argument)
        model = build_model(config, train_loader, registry, synchronized_bn=dist.num_replicas_in_sync > 1)
        model.set_replicas(dist.num_replicas_in_sync)
        optimizers = trainer.build_optimizers(config["train"], model)
        trainer.compile(model, optimizers)
        create_variables(model, train_loader)
        trainer.build_optimizer_variables(model, optimizers)
        checkpoint = checkpoint_of(model, optimizers)
        if ckpt_prefix:
            restore_checkpoint(checkpoint, ckpt_prefix, with_optimizer=True)
            logger.info("resumed from %s at epoch %d", ckpt_prefix, initial_epoch)
            if init_from:
                logger.info("train.init_from is not applied when resuming: %s holds every weight", ckpt_prefix)
        elif init_from:
            for i, source in enumerate(init_from if isinstance(init_from, list) else [init_from]):
                if i in deepreg_sources:
                    restored = {"backbone": len(load_deepreg_checkpoint(model, deepreg_sources[i]))}
                else:
                    restored = restore_parts(model, os.path.expanduser(source["path"]), source["parts"])
                logger.info("initialised %s from %s", restored, source["path"])

    train_steps = steps_per_epoch(train_loader.num_samples, batch_size)
    train_data = split_dataset(
        config, train_loader, training=True, batch_size=batch_size, repeat=True, registry=registry
    )
    valid_data, valid_steps = None, None
    if valid_loader is not None:
        valid_steps = steps_per_epoch(valid_loader.num_samples, batch_size)
        # repeat before batching: every validation batch is full, so it splits evenly between replicas
        valid_data = split_dataset(
            config, valid_loader, training=False, batch_size=batch_size, repeat=True, registry=registry
        )

    chief = is_chief(dist)
    existed = os.path.isdir(exp_path)
    reused = chief and is_failed_start(exp_path)
    fresh = chief and (reused or not (existed and os.listdir(exp_path)))  # nothing of an earlier run is kept
    if chief:
        if reused:
            remove_run_folder(exp_path, keep_folder=True)
            logger.warning("emptied %s, left by a run killed before its first checkpoint", exp_path)
        os.makedirs(exp_path, exist_ok=True)
        if fresh:
            # removed with the first checkpoint (CheckpointSaver); a run killed before then leaves it, and the
            # next run under this name reuses the folder (is_failed_start)
            mark_incomplete(exp_path, TOOL)
        save_config(config, os.path.join(exp_path, "config.yaml"))
        save_config(config, os.path.join(exp_path, SAVE_DIR, TRAINED_CONFIG))
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    run = TrainingRun(
        strategy=dist,
        exp_path=exp_path,
        train_data=train_data,
        train_steps=train_steps,
        epochs=epochs,
        initial_epoch=initial_epoch,
        save_period=int(config["train"]["save_period"]),
        valid_data=valid_data,
        valid_steps=valid_steps,
        chief=chief,
        verbose=verbose,
        console_metrics=console_metrics,
        update_freq=config["train"].get("update_freq", "epoch"),
        callbacks=list(callbacks or []),
    )
    note = hint(exp_path, console_metrics) if verbose and chief else None
    if note:
        print(note, flush=True)
    try:
        trainer.fit(model, optimizers, checkpoint, run)
    except BaseException:
        if fresh and not available_checkpoints(os.path.join(exp_path, SAVE_DIR)):
            # A failed start: nothing this run wrote can be resumed, and leftovers would block a rerun under
            # the same name. The error itself is what the user needs.
            remove_run_folder(exp_path, keep_folder=existed)
            logger.error("training failed before its first checkpoint; removed what it had written in %s", exp_path)
        raise
    finally:
        for loader in (train_loader, valid_loader):
            if loader is not None:
                loader.close()
    logger.info("training finished; logs and checkpoints in %s", exp_path)
    return model, exp_path


def remove_run_folder(exp_path: str, keep_folder: bool) -> None:
    """Delete what a failed run wrote in ``exp_path`` (the folder too unless ``keep_folder``: it existed, empty)."""
    if not keep_folder:
        shutil.rmtree(exp_path, ignore_errors=True)
        return
    for name in os.listdir(exp_path):
        path = os.path.join(exp_path, name)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


def check_voxels(*loaders) -> None:
    """Read every file of the loaders once before the first step: a NaN/Inf voxel or a label value
    outside [0, 1] is a DataError naming the file now, not an abort (or a hang) inside the input pipeline
    hours into training."""
    start = time.time()
    for loader in loaders:
        if loader is not None:
            loader.check_all_files()
    logger.info("data files checked in %.1f s", time.time() - start)


def build_trainer(train_config: Dict[str, Any], strategy, registry):
    """The trainer of ``train.trainer`` (default ``fit``; ``loop`` under MultiWorkerMirroredStrategy,
    where Keras' ``fit`` does not run). ValueError for a trainer that cannot run under ``strategy``."""
    entry = train_config.get("trainer")
    if entry is None:
        entry = {"name": "loop" if is_multiworker(strategy) else DEFAULT_TRAINER}
    trainer = registry.build_trainer(entry)
    if is_multiworker(strategy) and not trainer.supports_multiworker:
        raise ValueError(
            f"train.trainer {entry['name']!r} cannot run under MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585); use 'loop' (or leave train.trainer out)"
        )
    return trainer


def _adapt_to_deepreg_sources(config: dict) -> dict:
    """``{index in train.init_from: DeepRegCheckpoint}`` for the sources that are DeepReg checkpoints, whose
    backbone options are set in ``config`` (the architecture they were trained with) and whose parts are
    checked, before anything is built."""
    init_from = config["train"].get("init_from")
    found = {}
    for i, source in enumerate(init_from if isinstance(init_from, list) else [init_from] if init_from else []):
        deepreg = inspect_checkpoint(os.path.expanduser(source["path"]))
        if deepreg is not None:
            check_init_parts(source["parts"], deepreg)
            adapt_config(config["train"], deepreg, "train.init_from")
            found[i] = deepreg
    return found


def checkpoint_of(model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer]):
    """The run's checkpoint: the model and every optimizer (one under ``optimizer``, several under their names)."""
    if list(optimizers) == ["optimizer"]:
        return make_checkpoint(model, optimizers["optimizer"])
    return make_checkpoint(model, optimizers=optimizers)


__all__ = [
    "TRAINED_CONFIG",
    "train",
    "check_log_dir",
    "is_failed_start",
    "experiment_path",
    "default_exp_name",
    "build_trainer",
    "checkpoint_of",
]
