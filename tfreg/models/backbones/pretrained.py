"""Loading pretrained weights into a backbone, refused with a clear message when they do not fit.

The file is a Keras weights file (``.weights.h5``) written by ``backbone.save_weights(path)`` from a
backbone of the same architecture (the same preset and overrides). PyTorch checkpoints of the published
TransMorph and Swin UNETR weights are not read: converting them needs PyTorch and a name mapping, which
tfreg does not ship.
"""

import os
from collections import Counter
from typing import List, Tuple

import keras


def _file_shapes(path: str) -> List[Tuple[str, Tuple[int, ...]]]:
    # Imported here: the numerical core must import without h5py (tests/test_core_imports.py), and only
    # a backbone given a weights file reaches this.
    import h5py

    shapes = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            shapes.append((name, tuple(int(s) for s in obj.shape)))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return shapes


def load_pretrained_weights(layer: keras.layers.Layer, path: str, description: str) -> None:
    """Load ``path`` into the built ``layer``, after checking that its arrays fit.

    Args:
        layer: a built backbone.
        path: a ``.weights.h5`` file.
        description: what the layer is, for messages (e.g. ``"transmorph preset 'small'"``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a ``.weights.h5`` file, or its arrays' shapes differ from the layer's (the message
            lists the first differences and the counts).
    """
    if not isinstance(path, str) or not path.endswith(".weights.h5"):
        raise ValueError(f"weights: expected a Keras weights file '*.weights.h5' (backbone.save_weights), got {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights: {path} does not exist")
    in_file = _file_shapes(path)
    file_counts = Counter(shape for _, shape in in_file)
    model_counts = Counter(tuple(int(s) for s in v.shape) for v in layer.weights)
    if file_counts != model_counts:
        extra = [f"{name} {shape}" for name, shape in in_file if file_counts[shape] > model_counts.get(shape, 0)]
        missing = sorted(shape for shape in model_counts if model_counts[shape] > file_counts.get(shape, 0))
        raise ValueError(
            f"weights: {path} does not fit {description}: the file holds {len(in_file)} arrays, the backbone "
            f"{len(layer.weights)}; arrays of the file with no place in the backbone: {extra[:5]}"
            f"{' ...' if len(extra) > 5 else ''}; backbone shapes the file lacks: {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}. Was it saved from another preset or image size?"
        )
    try:
        layer.load_weights(path)
    except ValueError as err:  # same shapes, different structure (e.g. another backbone class)
        raise ValueError(f"weights: {path} does not fit {description}: {err}") from err


__all__ = ["load_pretrained_weights"]
