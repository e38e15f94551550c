"""Build what a run needs from a validated config: data loaders, datasets, the model, the optimizer.

The same functions serve ``tfreg_train``, ``tfreg_predict`` and Python users who want the pieces
(``model = build_model(config, loader)``). Errors name the config keys involved.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import keras
import numpy as np

from tfreg.data.load import get_data_loader
from tfreg.data.loaders.base import DataLoader
from tfreg.data.pipeline import build_dataset
from tfreg.layers.normalization import synchronized_batch_norm
from tfreg.registry import MODEL_CLASS


def build_loader(config: Dict[str, Any], split: str, registry=None, required: bool = False) -> Optional[DataLoader]:
    """The data loader of ``split`` (None when the config has no data for it, unless ``required``)."""
    loader = get_data_loader(config["dataset"], split, registry=registry)
    if loader is None and required:
        raise ValueError(f"dataset.{split}.dir is empty or missing: there is no data to use for the {split!r} split")
    return loader


def split_dataset(
    config: Dict[str, Any], loader: DataLoader, training: bool, batch_size: int, repeat: bool, registry=None
):
    """The batched ``tf.data`` dataset of ``loader`` with the config's preprocessing.

    Training datasets shuffle, drop the last incomplete batch and apply ``train.preprocess.data_augmentation``;
    others keep the loader's order and every sample.
    """
    preprocess = config["train"]["preprocess"]
    return build_dataset(
        loader,
        training=training,
        batch_size=batch_size,
        repeat=repeat,
        shuffle_buffer_num_batch=preprocess["shuffle_buffer_num_batch"] if training else 0,
        data_augmentation=preprocess.get("data_augmentation") if training else None,
        num_parallel_calls=preprocess.get("num_parallel_calls", -1),
        registry=registry,
    )


def build_model(
    config: Dict[str, Any], loader: DataLoader, registry=None, synchronized_bn: bool = False
) -> keras.Model:
    """The registration model named by ``train.method``, sized from the loader (DeepReg's ``build_model``).

    Args:
        config: a validated config.
        loader: gives ``moving_image_shape``, ``fixed_image_shape``, ``num_indices`` and ``labeled``.
        registry: where ``train.method`` and the backbone/losses are looked up.
        synchronized_bn: build every BatchNormalization with ``synchronized=True`` (global-batch statistics
            across replicas; TensorFlow backend). Training passes ``strategy.num_replicas_in_sync > 1``, inside
            ``strategy.scope()``. See :mod:`tfreg.layers.normalization`.

    The model class may read more from the data through its class method ``data_arguments(loader)`` (the
    segmentation model takes the label files' channel count as ``label_count``).

    Raises:
        ValueError: naming ``train.method``/``train.backbone`` and the image shapes when the model cannot be
            built for them (e.g. a backbone depth the shapes cannot hold).
    """
    from tfreg.registry import REGISTRY

    if registry is None:
        registry = REGISTRY
    train = config["train"]
    args = dict(
        name=train["method"],
        moving_image_size=tuple(loader.moving_image_shape),
        fixed_image_size=tuple(loader.fixed_image_shape),
        index_size=loader.num_indices,
        labeled=bool(loader.labeled),
        batch_size=train["preprocess"]["batch_size"],
        config=train,
    )
    # a user model class that predates the contract has no data_arguments
    data_arguments = getattr(registry.get(MODEL_CLASS, train["method"]), "data_arguments", None)
    if data_arguments is not None:
        args.update(data_arguments(loader))
    if registry is not REGISTRY:
        # the model builds its backbone and losses from the same registry (a copy may hold user classes);
        # the global one is the models' default, so user model classes without the argument keep working
        args["registry"] = registry
    if not isinstance(synchronized_bn, bool):
        raise ValueError(f"build_model: synchronized_bn must be a bool, got {synchronized_bn!r}")
    # The context is outside the try: its own error (e.g. a non-TensorFlow backend) is not a shape problem.
    with synchronized_batch_norm(synchronized_bn):
        try:
            return registry.build_model(config=args)
        except ValueError as err:
            backbone = train.get("backbone", {}).get("name") if isinstance(train.get("backbone"), dict) else None
            raise ValueError(
                f"train.method {train['method']!r} with train.backbone {backbone!r} cannot be built for moving images "
                f"{tuple(loader.moving_image_shape)} and fixed images {tuple(loader.fixed_image_shape)} "
                f"(dataset shapes): {err}"
            ) from None


def check_label_channels(
    config: Dict[str, Any], loader: Optional[DataLoader], split: str = "train", registry=None
) -> None:
    """Refuse, before training, losses that want other label channels than ``loader`` gives each sample.

    The config checks (:mod:`tfreg.config.validate`) already refuse a loss that scores every label channel
    as a class on labels sampled one channel per sample. What needs the data's channel count ``L`` (the
    stacked count with ``dataset.sample_label: stack``, else the most of any label file) is checked here,
    for each loss of ``train.loss`` (:mod:`tfreg.loss_inputs`):

    - in the model's label categories, a loss wanting exactly ``n`` channels (e.g. ``class_weights`` of
      ``n`` entries) or at least ``n`` (``include_background: false``) with ``L`` channels per sample;
    - a mask input wired to a label tensor (the rigidity penalty's ``mask``): without ``stack``, labels of
      ``L > 1`` structures would give it one randomly sampled structure per sample; with ``stack``, a
      selected channel index must be below ``L``.

    Args:
        config: a validated config.
        loader: a split's data loader; None or unlabeled data: nothing to check.
        split: the loader's split, for messages.
        registry: where ``train.method`` and the losses are looked up.

    Raises:
        ValueError: naming every offending ``train.loss`` entry, the loss and the data's channel count.
    """
    if loader is None or not loader.labeled:
        return
    if registry is None:
        from tfreg.registry import REGISTRY as registry
    from tfreg.config.errors import format_key_path
    from tfreg.loss_inputs import channel_count_problem, label_channel_need, mask_channel_problem, split_loss_entry
    from tfreg.registry import LOSS_CLASS

    train = config["train"]
    model_cls = registry.get(MODEL_CLASS, train["method"])
    scored = model_cls.label_categories(train) if hasattr(model_cls, "label_categories") else ("label",)
    stacked = loader.sample_label == "stack"
    count = loader.stacked_label_count() if stacked else loader.num_labels
    problems = []
    section = train.get("loss") if isinstance(train.get("loss"), dict) else {}
    for category, value in section.items():
        entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not registry.contains(LOSS_CLASS, entry.get("name")):
                continue
            path = format_key_path(("train", "loss", category) + ((i,) if isinstance(value, list) else ()))
            loss_cls = registry.get(LOSS_CLASS, entry["name"])
            parsed = split_loss_entry(loss_cls, entry)
            found = []
            if stacked and category in scored and count is not None:
                found.append(channel_count_problem(entry["name"], label_channel_need(loss_cls, parsed.kwargs), count))
            for key, source in parsed.inputs.items():
                found.append(mask_channel_problem(key, source, count, loader.sample_label, entry["name"]))
            problems += [f"{path}: {p}" for p in found if p]
    if problems:
        raise ValueError(f"the losses do not fit the labels of the {split!r} split: " + "; ".join(problems))


def build_optimizer(config: Dict[str, Any]) -> keras.optimizers.Optimizer:
    """``train.optimizer`` (``{name: Adam, learning_rate: 1e-4, ...}``) of a config as a Keras optimizer
    (what the default trainer builds; see :func:`tfreg.engine.trainers.base.build_optimizer`)."""
    from tfreg.engine.trainers.base import build_optimizer as build_one

    return build_one(config["train"]["optimizer"])


def example_inputs(loader: DataLoader, batch_size: int = 1) -> Dict[str, np.ndarray]:
    """Zero inputs with the loader's shapes, to create a model's variables before restoring a checkpoint."""
    inputs = {
        "moving_image": np.zeros((batch_size, *loader.moving_image_shape), np.float32),
        "fixed_image": np.zeros((batch_size, *loader.fixed_image_shape), np.float32),
        "indices": np.zeros((batch_size, loader.num_indices), np.float32),
    }
    if loader.labeled:
        # one label channel per sample (DeepReg), or every channel stacked last (sample_label: stack)
        stacked = (loader.stacked_label_count(),) if loader.sample_label == "stack" else ()
        inputs["moving_label"] = np.zeros(inputs["moving_image"].shape + stacked, np.float32)
        inputs["fixed_label"] = np.zeros(inputs["fixed_image"].shape + stacked, np.float32)
    return inputs


def create_variables(
    model: keras.Model, loader: DataLoader, optimizer: Optional[keras.optimizers.Optimizer] = None
) -> None:
    """Create the model's (and the optimizer's) variables with one inference call on zeros.

    DeepReg ran a hidden one-step ``fit`` for this, which trained one uncounted step; this does not train.
    """
    model(example_inputs(loader), training=False)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


__all__ = [
    "build_loader",
    "split_dataset",
    "build_model",
    "check_label_channels",
    "build_optimizer",
    "example_inputs",
    "create_variables",
]
