"""The ``tf.data`` pipeline: samples -> load + resize -> shuffle -> repeat -> batch -> augment -> prefetch.

Per epoch (each pass of ``repeat`` restarts the generator, so a fixed seed repeats the same order,
as in DeepReg):

1. ``from_generator`` over :meth:`DataLoader.sample_generator`: ``(image_indices, label_indices)``
   per image pair, pure Python (DeepReg's sampling order);
2. ``map`` (``num_parallel_calls``, order kept): in a ``tf.numpy_function``, read and check the files
   and resize images and labels to the configured shapes with :func:`tfreg.ops.resize.resize`
   (:meth:`DataLoader.load_resized_sample`); each pair is read and resized once even when all its
   labels are used;
3. ``unbatch`` (labeled data): one sample per requested label; with ``sample_label: stack`` none: the labels
   stay together, channels last;
4. training: ``shuffle`` (buffer ``batch_size * shuffle_buffer_num_batch``, reshuffled every epoch);
5. ``repeat`` if asked; ``batch`` (``drop_remainder`` in training, so batch shapes are static);
6. training: each ``data_augmentation`` entry, built from the registry, mapped over batches;
7. ``prefetch`` (last, so augmentation also runs ahead of the training step; DeepReg prefetched
   before augmenting).

Elements are dicts of float32 tensors: ``moving_image`` ``(B, *moving_image_shape)``, ``fixed_image``
``(B, *fixed_image_shape)``, ``indices`` ``(B, num_indices)`` (label index -1 when unlabeled, -2
(:data:`~tfreg.data.sampling.STACKED_LABEL_INDEX`) for stacked labels) and, when labeled,
``moving_label``/``fixed_label`` with the image shapes (``sample_label: stack``: ``(B, *shape, L)``); with landmarks
(``landmarks: true``), ``moving_landmarks``/``fixed_landmarks`` ``(B, max_landmarks, ndim)`` in model voxels,
``landmark_mask`` ``(B, max_landmarks)`` and optionally ``moving_roi``/``fixed_roi`` with the image shapes. The
dataset works with plain Python iteration and with ``strategy.experimental_distribute_dataset`` (the global batch is
split per replica).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Union

import numpy as np
import tensorflow as tf

from tfreg.data.sampling import STACKED_LABEL_INDEX, steps_per_epoch

if TYPE_CHECKING:  # annotations only: the loaders import this module (lazily), not the other way round
    from tfreg.data.loaders.base import DataLoader

AUTOTUNE = tf.data.AUTOTUNE


def sample_dataset(loader: DataLoader, num_parallel_calls: int = -1) -> tf.data.Dataset:
    """One epoch of single samples, loaded, checked, normalised and resized (no shuffle, batch or repeat).

    Returns:
        Dataset of dicts: ``moving_image`` ``(*moving_image_shape)``, ``fixed_image``
        ``(*fixed_image_shape)``, ``indices`` ``(num_indices,)``, when labeled ``moving_label`` /
        ``fixed_label`` with the image shapes, and the landmark entries of
        :meth:`DataLoader.landmark_arrays` when the loader reads landmarks; float32.
    """
    num_image_indices = loader.num_indices - 1
    spec = loader.sample_spec()
    keys = list(spec)

    def generator():
        for image_indices, label_indices in loader.sample_generator():
            yield np.asarray(image_indices, dtype=np.int32), np.asarray(label_indices, dtype=np.int32)

    def load(image_indices, label_indices):
        # Files differ in shape, and tfreg.ops.resize needs static shapes: resize here, on NumPy arrays.
        sample = loader.load_resized_sample(image_indices.tolist(), label_indices.tolist())
        return [sample[key] for key in keys]

    def load_sample(image_indices, label_indices):
        arrays = tf.numpy_function(load, [image_indices, label_indices], [tf.float32] * len(keys), name="load_sample")
        out: Dict[str, tf.Tensor] = {}
        for key, array in zip(keys, arrays):
            array.set_shape(list(spec[key]))  # labels arrive label axis first, (L, *shape)
            out[key] = array
        image_indices = tf.cast(image_indices, tf.float32)
        if not loader.labeled:
            out["indices"] = tf.concat([image_indices, tf.constant([-1.0])], axis=0)
            return out
        if loader.sample_label == "stack":
            # every label in one sample, channels last: (L, *S) -> (*S, L)
            for key in ("moving_label", "fixed_label"):
                out[key] = tf.transpose(out[key], list(range(1, len(spec[key]))) + [0])
            out["indices"] = tf.concat([image_indices, tf.constant([float(STACKED_LABEL_INDEX)])], axis=0)
            return out
        num_labels = tf.shape(label_indices)[0]
        for key in keys:
            if key in ("moving_label", "fixed_label"):
                continue
            # one copy of the per-pair arrays (images, landmarks, ROI maps) per label
            value = out[key]
            out[key] = tf.broadcast_to(value[None], tf.concat([[num_labels], tf.shape(value)], axis=0))
        out["indices"] = tf.concat(
            [tf.tile(image_indices[None], [num_labels, 1]), tf.cast(label_indices, tf.float32)[:, None]], axis=1
        )
        return out

    dataset = tf.data.Dataset.from_generator(
        generator,
        output_signature=(
            tf.TensorSpec(shape=(num_image_indices,), dtype=tf.int32),
            tf.TensorSpec(shape=(None,), dtype=tf.int32),
        ),
    )
    dataset = dataset.map(load_sample, num_parallel_calls=num_parallel_calls, deterministic=True)
    if loader.labeled and loader.sample_label != "stack":
        dataset = dataset.unbatch()  # one sample per label, in label order
    options = tf.data.Options()
    # A generator cannot be split by file: each worker of a multi-worker strategy keeps its share of
    # the elements instead (AUTO would fall back to this with a warning).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def augmentation_configs(data_augmentation: Union[None, Dict, List[Dict]]) -> List[Dict[str, Any]]:
    """``data_augmentation`` (None, a dict, or a list of dicts) as a list of dicts."""
    if data_augmentation is None:
        return []
    if isinstance(data_augmentation, dict):
        return [data_augmentation]
    if isinstance(data_augmentation, (list, tuple)) and all(isinstance(c, dict) for c in data_augmentation):
        return list(data_augmentation)
    raise ValueError(
        "train.preprocess.data_augmentation must be null, a dict {name: ..., ...} or a list of such dicts, "
        f"got {data_augmentation!r}"
    )


def build_dataset(
    loader: DataLoader,
    training: bool,
    batch_size: int,
    repeat: bool,
    shuffle_buffer_num_batch: int,
    data_augmentation: Union[None, Dict, List[Dict]] = None,
    num_parallel_calls: int = -1,
    registry=None,
) -> tf.data.Dataset:
    """The batched dataset of ``loader`` (DeepReg's ``get_dataset_and_preprocess``).

    Args:
        loader: a data loader.
        training: shuffle, drop the last incomplete batch, and augment.
        batch_size: global batch size (``tf.distribute`` splits it between replicas).
        repeat: repeat forever (use ``steps_per_epoch`` to delimit epochs).
        shuffle_buffer_num_batch: shuffle buffer in batches; 0 disables shuffling.
        data_augmentation: None, a dict or a list of dicts ``{name: ..., **kwargs}`` (registry category
            ``da_class``); each is built with defaults ``moving_image_size``, ``fixed_image_size`` and
            ``batch_size`` and mapped over the batches as ``da(batch: dict) -> dict``. Training only.
        num_parallel_calls: parallelism of loading and augmentation; -1 means ``tf.data.AUTOTUNE``.
        registry: where augmentations are looked up; default ``tfreg.registry.REGISTRY``.

    Returns:
        Dataset of dicts of float32 batches (see the module docstring).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"train.preprocess.batch_size must be a positive int, got {batch_size!r}")
    if (
        isinstance(shuffle_buffer_num_batch, bool)
        or not isinstance(shuffle_buffer_num_batch, (int, np.integer))
        or shuffle_buffer_num_batch < 0
    ):
        raise ValueError(
            f"train.preprocess.shuffle_buffer_num_batch must be a non-negative int, got {shuffle_buffer_num_batch!r}"
        )
    configs = augmentation_configs(data_augmentation) if training else []
    if registry is None:
        from tfreg.registry import REGISTRY as registry
    augmentations = [
        registry.build_data_augmentation(
            config=config,
            default_args={
                "moving_image_size": tuple(loader.moving_image_shape),
                "fixed_image_size": tuple(loader.fixed_image_shape),
                "batch_size": int(batch_size),
            },
        )
        for config in configs
    ]

    if getattr(loader, "landmarks", False):
        for config, augmentation in zip(configs, augmentations):
            if not getattr(augmentation, "supports_landmarks", False):
                raise ValueError(
                    f"train.preprocess.data_augmentation {config.get('name')!r} cannot move landmarks, but the "
                    "dataset reads them (dataset.landmarks: true): the images would move and their landmarks not. "
                    "Use an augmentation that moves them (affine) or none (data_augmentation: null)"
                )
    dataset = sample_dataset(loader, num_parallel_calls=num_parallel_calls)
    if training and shuffle_buffer_num_batch > 0:
        dataset = dataset.shuffle(
            buffer_size=int(batch_size) * int(shuffle_buffer_num_batch), seed=loader.seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(int(batch_size), drop_remainder=bool(training))
    for augmentation in augmentations:
        dataset = dataset.map(augmentation, num_parallel_calls=num_parallel_calls)
    return dataset.prefetch(AUTOTUNE)


__all__ = ["sample_dataset", "build_dataset", "augmentation_configs", "steps_per_epoch", "AUTOTUNE"]
