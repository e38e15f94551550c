"""A segmentation network as one layer: a segmentation backbone, a ``1^n`` convolution head, sigmoid or softmax.

The sub-network of composite models (WSSAMNet's segmenters). Its attribute names (``backbone``, ``head``)
are those of the :class:`~tfreg.models.segmentation.SegmentationModel`, so a segmentation run's checkpoint
loads into it part by part (``train.init_from: {path: ..., parts: {moving_segmenter/backbone: backbone,
moving_segmenter/head: head}}``).
"""

from typing import Any, Dict, Optional, Sequence

import keras
from keras import ops

from tfreg.label_threshold import binarise
from tfreg.layers.conv import conv_layer
from tfreg.models.segmentation import resolve_head
from tfreg.registry import REGISTRY


def class_probabilities(logits, activation: str):
    """``softmax`` over the class axis, or an independent ``sigmoid`` per class: ``(B, *S, K)`` -> same."""
    return ops.softmax(logits, axis=-1) if activation == "softmax" else ops.sigmoid(logits)


def foreground(probabilities, activation: str):
    """The structure channels: all of a sigmoid head, all but the background (channel 0) of a softmax head."""
    return probabilities[..., 1:] if activation == "softmax" else probabilities


def decode_masks(probabilities, activation: str, num_classes: int):
    """Predicted structure masks ``(B, *S, num_classes) -> (B, *S, L)`` bool: a sigmoid head's channels
    thresholded at 0.5 (independent, may overlap); a softmax head's argmax one-hot with the background
    (channel 0) dropped (exclusive)."""
    probabilities = ops.convert_to_tensor(probabilities, "float32")
    if activation == "softmax":
        classes = ops.argmax(probabilities, axis=-1)
        return ops.cast(ops.one_hot(classes, num_classes, dtype="float32")[..., 1:], "bool")
    return binarise(probabilities)


class Segmenter(keras.layers.Layer):
    """``image (B, *S[, C]) -> class probabilities (B, *S, num_classes)``.

    Args:
        image_size: the spatial size ``S`` (2 or 3 ints) the backbone is built for.
        backbone: ``{name, ...}`` of a registered segmentation backbone (e.g. ``unet_segmenter``), built
            with ``image_size``; or a built layer.
        head: ``{num_classes, activation}`` (see :func:`tfreg.models.segmentation.resolve_head`).
        registry: where the backbone is looked up.
    """

    def __init__(
        self,
        image_size: Sequence[int],
        backbone: Any,
        head: Optional[Dict[str, Any]] = None,
        registry=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = tuple(int(s) for s in image_size)
        self.ndim = len(self.image_size)
        head = resolve_head(dict(head or {}))
        self.num_classes, self.activation = head["num_classes"], head["activation"]
        self.head_config = head
        if isinstance(backbone, keras.layers.Layer):
            self.backbone = backbone
        elif isinstance(backbone, dict) and "name" in backbone:
            self.backbone = (registry or REGISTRY).build_backbone(
                config=dict(backbone), default_args={"image_size": self.image_size}
            )
        else:
            raise ValueError(
                f"segmenter backbone must be {{name, ...}} (e.g. unet_segmenter) or a layer, got {backbone!r}"
            )
        self.backbone_config = backbone if isinstance(backbone, dict) else None
        self.head = conv_layer(self.ndim, self.num_classes, 1, padding="same", name="head")

    @property
    def foreground_channels(self) -> int:
        return self.num_classes - (1 if self.activation == "softmax" else 0)

    def call(self, image, training=None):
        image = ops.cast(image, "float32")
        if len(image.shape) == self.ndim + 1:
            image = ops.expand_dims(image, -1)
        return class_probabilities(self.head(self.backbone(image, training=training)), self.activation)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(image_size=list(self.image_size), backbone=self.backbone_config, head=self.head_config)
        return config


__all__ = ["Segmenter", "class_probabilities", "decode_masks", "foreground"]
