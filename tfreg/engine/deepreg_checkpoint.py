"""Load DeepReg's TensorFlow 2.3 checkpoints (its model zoo's ``ckpt-N``) into tfreg's models, by name.

What DeepReg 1.0 writes. Its ``CheckpointManagerCallback`` saves ``tf.train.Checkpoint(model=model,
optimizer=model.optimizer)`` through a ``tf.train.CheckpointManager`` as ``save/ckpt-<epoch>.{index,data-*}``
(the same file names as tfreg's). Inside, every object of the Keras 2 model is a node of TensorFlow's
object graph, reached from its parent by the ATTRIBUTE name that holds it (a list item by its index, a
``Sequential``'s or functional model's layer as ``layer-<i>`` and ``layer_with_weights-<j>``), and a
variable is filed under the first path a breadth-first walk finds, e.g.
``model/_model/layer_with_weights-0/_encode_convs/0/layer_with_weights-0/_layer/kernel``. The backbone
(DeepReg's ``LocalNet``, ``UNet`` or ``GlobalNet``, in ``deepreg/model/backbone/``) holds:

- ``_encode_convs[d]``: ``Sequential([Conv3dBlock, ResidualConv3dBlock])`` per encoder level ``d``;
- ``_encode_pools[d]``: max pooling (no weights), or a strided ``Conv3dBlock`` when ``pooling: false``;
- ``_bottom_block``: ``Sequential([Conv3dBlock, ResidualConv3dBlock])`` (UNet, GlobalNet) or a
  ``Conv3dBlock`` (LocalNet);
- ``_decode_deconvs[d]``: ``Deconv3dBlock`` (UNet) or ``AdditiveUpsampling`` whose ``deconv3d`` is one
  (LocalNet), and ``_decode_convs[d]``: ``Sequential([Conv3dBlock, ResidualConv3dBlock])``, for the decoded
  levels ``d`` (the lists hold None below the lowest extract level);
- ``_output_block``: ``Extraction`` whose ``layers[j]`` is ``Sequential([Conv3D, Resize3d])`` per extract
  level (LocalNet, UNet), or ``AffineHead`` with a ``Dense`` ``_dense`` (GlobalNet).

A ``Conv3dBlock``/``Deconv3dBlock`` (``NormBlock``) holds ``_layer`` (a bias-free ``Conv3D`` or
``Conv3DTranspose``; in some 1.0 pre-releases a ``Deconv3d`` wrapper whose ``_deconv3d`` is the transposed
convolution) and ``_norm`` (``BatchNormalization``); a ``ResidualConv3dBlock`` holds ``_layers[0..1]``
(convolutions) and ``_norms[0..1]``. Keras variables are named ``kernel``, ``bias``, ``gamma``, ``beta``,
``moving_mean``, ``moving_variance``.

How it is read. The file's object graph (``_CHECKPOINTABLE_OBJECT_GRAPH``) keeps every parent-child edge,
not only the path that named a variable, so the loader finds the backbone as the node holding
``_encode_convs`` and ``_output_block`` (wherever the model wrapped it) and walks from there along the
attribute names above; which of several equivalent paths TensorFlow used for a key does not matter. Each
tfreg weight (:func:`tfreg.engine.checkpoint.named_weights`) gets the DeepReg variable at its place in the
architecture, the shapes are checked, and the load is refused before anything is assigned when a DeepReg
variable has no place in the tfreg model or a tfreg weight gets no value (each named). The optimizer's
state, the metrics' counters and ``save_counter`` are not read.

Architecture. tfreg's backbones match DeepReg 1.0's with these options, which :func:`adapt_config` sets:
``decode_residual: true`` for ``local`` and ``unet`` (DeepReg 1.0 follows each decoder conv block by a
residual block), ``encode_kernel_sizes: 3, bottom_residual: true`` for ``global``. DeepReg 1.0's
``Extraction`` applies its ``j``-th output convolution (for extract level ``l_j``) to the decoder level
``min + max - l_j`` (it indexes its list of levels from the wrong end); tfreg's output convolution of level
``l`` therefore gets DeepReg's convolution of level ``min + max - l``. Level sets that are not symmetric
(e.g. ``[0, 2, 3]``) make DeepReg read a level tfreg does not decode, and are refused.

Not readable: DeepReg 0.1 checkpoints (the model zoo's ``*.ckpt`` files of ``paired_mrus_brain`` and
``unpaired_mr_brain``, written by ``model.save_weights``; their backbones hold ``_downsample_blocks``): their
LocalNet decoder convolves before the skip is added, which tfreg does not implement, and they are refused
with that reason. See docs/deepreg-checkpoints.md.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from tfreg.engine.checkpoint import (
    WHOLE_MODEL,
    CheckpointError,
    check_checkpoint_files,
    make_checkpoint,
    named_weights,
    parse_ckpt_path,
    restore_checkpoint,
)

logger = logging.getLogger(__name__)

#: The tensor holding a TF2 object-based checkpoint's object graph.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
#: The node attribute holding a variable's value.
_VALUE = "VARIABLE_VALUE"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
#: Backbone options making tfreg's backbones DeepReg 1.0's, by registered backbone name.
BACKBONE_OPTIONS: Dict[str, Dict[str, object]] = {
    "local": {"decode_residual": True},
    "unet": {"decode_residual": True},
    "global": {"encode_kernel_sizes": 3, "bottom_residual": True},
}
_BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
_LISTED = 8  # names listed per problem in an error message

Path = Tuple[str, ...]


@dataclass(frozen=True)
class DeepRegCheckpoint:
    """A checkpoint whose object graph holds a DeepReg backbone.

    Attributes:
        prefix: the checkpoint prefix (``.../ckpt-N`` or DeepReg 0.1's ``.../weights-epochN.ckpt``).
        version: ``"1.0"`` (DeepReg >= 1.0: ``_encode_convs``) or ``"0.1"`` (``_downsample_blocks``).
        backbone: DeepReg's registered backbone name: ``"local"``, ``"unet"`` or ``"global"``.
        backbone_path: the object path of the backbone node, e.g. ``model/_model/layer_with_weights-0``.
    """

    prefix: str
    version: str
    backbone: str
    backbone_path: str


class _Graph:
    """The object graph of a checkpoint: children by edge name, variables' checkpoint keys."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.reader = self._read(tf.train.load_checkpoint, prefix)
        if not self.reader.has_tensor(OBJECT_GRAPH_KEY):
            raise CheckpointError(
                f"checkpoint {prefix} has no object graph ({OBJECT_GRAPH_KEY}): it is a TensorFlow 1 name-based "
                "checkpoint, which neither DeepReg 0.1/1.0 nor tfreg writes"
            )
        proto = trackable_object_graph_pb2.TrackableObjectGraph.FromString(self.tensor(OBJECT_GRAPH_KEY))
        self.children: List[Dict[str, int]] = [{c.local_name: c.node_id for c in n.children} for n in proto.nodes]
        self.values: List[Optional[str]] = [
            next((a.checkpoint_key for a in n.attributes if a.name == _VALUE), None) for n in proto.nodes
        ]
        self.shapes = self.reader.get_variable_to_shape_map()

    def _read(self, function, *args):
        try:
            return function(*args)
        except (tf.errors.OpError, ValueError, IndexError) as err:  # a cut or damaged file
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise CheckpointError(
                f"checkpoint {self.prefix} cannot be read: its files are truncated or damaged ({first})"
            ) from None

    def tensor(self, key: str) -> np.ndarray:
        """The stored value under the checkpoint key ``key``."""
        return self._read(self.reader.get_tensor, key)

    def walk(self, node: int, path: Path) -> Optional[int]:
        """The node reached from ``node`` along the edge names ``path``; None where an edge is missing."""
        for name in path:
            node = self.children[node].get(name)
            if node is None:
                return None
        return node

    def nodes_under(self, root: int) -> List[int]:
        """Every node below ``root`` (each once), breadth first."""
        seen, order, queue = {root}, [], [root]
        while queue:
            node = queue.pop(0)
            order.append(node)
            for child in self.children[node].values():
                if child not in seen:
                    seen.add(child)
                    queue.append(child)
        return order

    def path_to(self, target: int) -> str:
        """The first breadth-first edge path from the root to ``target`` (for messages)."""
        parents = {0: None}
        queue = [0]
        while queue:
            node = queue.pop(0)
            if node == target:
                break
            for name, child in self.children[node].items():
                if child not in parents:
                    parents[child] = (node, name)
                    queue.append(child)
        names = []
        node = target
        while parents.get(node) is not None:
            node, name = parents[node]
            names.append(name)
        return "/".join(reversed(names))


def _backbone_kind(graph: _Graph, node: int) -> Tuple[str, str]:
    """``(version, backbone name)`` of a node that holds a DeepReg backbone, else ``("", "")``."""
    names = graph.children[node]
    if "_encode_convs" in names and "_output_block" in names:
        head = graph.children[names["_output_block"]]
        if "_dense" in head:
            return "1.0", "global"
        bottom = graph.children[names["_bottom_block"]] if "_bottom_block" in names else {}
        return "1.0", ("local" if "_layer" in bottom else "unet")
    if "_downsample_blocks" in names:
        if "_dense_layer" in names:
            return "0.1", "global"
        return "0.1", ("local" if "_extract_layers" in names else "unet")
    return "", ""


def inspect_checkpoint(ckpt_path: str) -> Optional[DeepRegCheckpoint]:
    """The DeepReg backbone in the checkpoint ``ckpt_path``, or None when it holds none (a tfreg checkpoint).

    Args:
        ckpt_path: a checkpoint prefix (the path without ``.index``); a path without an ``.index`` file
            gives None (the caller's own checks then report it).

    Raises:
        CheckpointError: missing data shards, no object graph, or several DeepReg backbones.
    """
    prefix = os.path.expanduser(str(ckpt_path))
    if not os.path.isfile(prefix + ".index"):
        return None
    check_checkpoint_files(prefix)
    graph = _Graph(prefix)
    found = []
    for node in graph.nodes_under(0):
        version, kind = _backbone_kind(graph, node)
        if version:
            found.append((node, version, kind))
    if not found:
        return None
    if len(found) > 1:
        raise CheckpointError(
            f"checkpoint {prefix} holds {len(found)} DeepReg backbones "
            f"({', '.join(graph.path_to(n) for n, _, _ in found)}); only models with one backbone are read"
        )
    node, version, kind = found[0]
    return DeepRegCheckpoint(prefix=prefix, version=version, backbone=kind, backbone_path=graph.path_to(node))


def _refuse_old(checkpoint: DeepRegCheckpoint) -> None:
    if checkpoint.version != "1.0":
        raise CheckpointError(
            f"checkpoint {checkpoint.prefix} holds a DeepReg 0.1 {checkpoint.backbone} backbone (its blocks are "
            "_downsample_blocks, ...): tfreg reads DeepReg 1.0 checkpoints only (DeepReg 0.1's LocalNet decoder "
            "convolves before adding the skip, which no tfreg backbone does); see docs/deepreg-checkpoints.md"
        )


def backbone_options(checkpoint: DeepRegCheckpoint) -> Dict[str, object]:
    """The backbone options (``train.backbone`` keys) making tfreg's backbone DeepReg 1.0's for this checkpoint."""
    _refuse_old(checkpoint)
    return dict(BACKBONE_OPTIONS[checkpoint.backbone])


def adapt_config(train: dict, checkpoint: DeepRegCheckpoint, source: str = "the checkpoint") -> Dict[str, object]:
    """Set :func:`backbone_options` in ``train["backbone"]`` (in place), so the model built from ``train`` is
    the architecture the DeepReg checkpoint was trained with.

    Args:
        train: the config's ``train`` section (DeepReg's YAML, as DeepReg's demos give it).
        checkpoint: from :func:`inspect_checkpoint`.
        source: how the checkpoint was given, for messages (``"-k"``, ``"train.init_from"``).

    Returns:
        The options that were set.

    Raises:
        CheckpointError: a DeepReg 0.1 checkpoint, another backbone than the checkpoint's, or an option
            that the config sets to another value (each named).
    """
    options = backbone_options(checkpoint)
    backbone = train.get("backbone")
    name = backbone.get("name") if isinstance(backbone, dict) else None
    if name != checkpoint.backbone:
        raise CheckpointError(
            f"{source} {checkpoint.prefix} holds DeepReg's {checkpoint.backbone!r} backbone, but the config's "
            f"train.backbone.name is {name!r}"
        )
    for key, value in options.items():
        given = backbone.get(key, value)
        if given != value:
            raise CheckpointError(
                f"{source} {checkpoint.prefix} is a DeepReg 1.0 {checkpoint.backbone} checkpoint, whose architecture "
                f"needs train.backbone.{key}: {value!r}; the config sets {given!r}"
            )
        backbone[key] = value
    logger.info("DeepReg 1.0 checkpoint %s: backbone options %s set", checkpoint.prefix, options)
    return options


# ---------------------------------------------------------------------------------------------- the places
def _conv_block(tf_key: str, deepreg: Path, transpose: bool = False) -> List[Tuple[str, List[Path]]]:
    """A DeepReg ``NormBlock`` (``_layer``, ``_norm``) onto a tfreg ``ConvBlock`` or ``DeconvBlock``."""
    layer = "deconv" if transpose else "conv"
    kernels = [deepreg + ("_layer", "kernel")]
    if transpose:  # a 1.0 pre-release wrapped the transposed convolution in a Deconv3d layer
        kernels.append(deepreg + ("_layer", "_deconv3d", "kernel"))
    places = [(f"{tf_key}/{layer}/kernel", kernels)]
    places += [(f"{tf_key}/norm/{w}", [deepreg + ("_norm", w)]) for w in _BN_WEIGHTS]
    return places


def _residual_block(tf_key: str, deepreg: Path) -> List[Tuple[str, List[Path]]]:
    """A DeepReg ``ResidualConv3dBlock`` (``_layers[i]``, ``_norms[i]``) onto a tfreg ``ResidualBlock``."""
    places = []
    for i in range(2):
        places.append((f"{tf_key}/block{i + 1}/conv/kernel", [deepreg + ("_layers", str(i), "kernel")]))
        places += [(f"{tf_key}/block{i + 1}/norm/{w}", [deepreg + ("_norms", str(i), w)]) for w in _BN_WEIGHTS]
    return places


def _sequential(deepreg: Path, index: int) -> Path:
    """The ``index``-th layer of a Keras 2 ``Sequential`` (both edges, ``layer-i`` and ``layer_with_weights-j``,
    exist for these all-weighted blocks; the positional one is used)."""
    return deepreg + (f"layer-{index}",)


def _unet_places(backbone, kind: str) -> List[Tuple[str, List[Path]]]:
    """``[(tfreg key under backbone/, [DeepReg paths from the backbone node])]`` for a UNet or LocalNet."""
    places = []
    for d in range(backbone.depth):
        enc = ("_encode_convs", str(d))
        places += _conv_block(f"encoders/{d}/0", _sequential(enc, 0))
        places += _residual_block(f"encoders/{d}/1", _sequential(enc, 1))
        if not backbone.pooling:
            places += _conv_block(f"downs/{d}", ("_encode_pools", str(d)))
    if kind == "local":
        places += _conv_block("bottom/0", ("_bottom_block",))
    else:
        places += _conv_block("bottom/0", _sequential(("_bottom_block",), 0))
        places += _residual_block("bottom/1", _sequential(("_bottom_block",), 1))
    additive = kind == "local" and getattr(backbone, "use_additive_upsampling", False)
    for i, d in enumerate(range(backbone.depth - 1, backbone.min_level - 1, -1)):
        up = ("_decode_deconvs", str(d)) + (("deconv3d",) if additive else ())
        places += _conv_block(f"ups_list/{i}", up, transpose=True)
        dec = ("_decode_convs", str(d))
        places += _conv_block(f"decoders_list/{i}", _sequential(dec, 0))
        if backbone.decode_residual:
            places += _residual_block(f"decode_residuals/{i}", _sequential(dec, 1))
    levels = list(backbone.extract_levels)
    low, high = min(levels), max(levels)
    for i, level in enumerate(levels):
        read = low + high - level
        if read not in levels:
            raise CheckpointError(
                f"DeepReg 1.0's Extraction applies the output convolution of extract level {read} to decoder level "
                f"{level} and that of level {level} to level {read} (it indexes its levels from the wrong end); "
                f"with extract_levels {levels} it reads a level tfreg's backbone does not output, so this network "
                "cannot be reproduced"
            )
        conv = _sequential(("_output_block", "layers", str(levels.index(read))), 0)
        places += [(f"out_convs/{i}/{w}", [conv + (w,)]) for w in ("kernel", "bias")]
    return places


def _global_places(backbone) -> List[Tuple[str, List[Path]]]:
    places = []
    for d in range(backbone.depth):
        enc = ("_encode_convs", str(d))
        places += _conv_block(f"encoders/{2 * d}", _sequential(enc, 0))
        places += _residual_block(f"encoders/{2 * d + 1}", _sequential(enc, 1))
    places += _conv_block("bottom", _sequential(("_bottom_block",), 0))
    if backbone.bottom_residual:
        places += _residual_block("bottom_residuals/0", _sequential(("_bottom_block",), 1))
    places += [(f"dense/{w}", [("_output_block", "_dense", w)]) for w in ("kernel", "bias")]
    return places


def _tfreg_kind(backbone) -> str:
    from tfreg.models.backbones.global_net import GlobalNet
    from tfreg.models.backbones.local import LocalNet
    from tfreg.models.backbones.unet import UNet

    if isinstance(backbone, LocalNet):
        return "local"
    if isinstance(backbone, UNet):
        return "unet"
    if isinstance(backbone, GlobalNet):
        return "global"
    return type(backbone).__name__


def _short(ckpt_key: str, backbone_path: str) -> str:
    """A checkpoint key relative to the backbone, without TensorFlow's ``/.ATTRIBUTES/VARIABLE_VALUE``."""
    key = ckpt_key[: -len(_SUFFIX)] if ckpt_key.endswith(_SUFFIX) else ckpt_key
    return key[len(backbone_path) + 1 :] if backbone_path and key.startswith(backbone_path + "/") else key


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _LISTED else "")


def _hint(kind: str, backbone) -> str:
    """The options a model built without :func:`adapt_config` lacks, for the error message."""
    missing: Dict[str, object] = {}
    if kind in ("local", "unet") and not backbone.decode_residual:
        missing["decode_residual"] = True
    if kind == "global":
        if list(backbone.encode_kernel_sizes) != [3] * (backbone.depth + 1):
            missing["encode_kernel_sizes"] = 3
        if not backbone.bottom_residual:
            missing["bottom_residual"] = True
    if not missing:
        return ""
    return f" (DeepReg 1.0's {kind} needs the train.backbone options {missing})"


def load_deepreg_checkpoint(model: keras.Model, checkpoint) -> Dict[str, str]:
    """Copy a DeepReg 1.0 checkpoint's backbone weights into a built tfreg model (module docstring).

    Args:
        model: a built tfreg registration model (``ddf``, ``dvf``, ``conditional``, ``affine``) whose
            ``backbone`` is ``local``, ``unet`` or ``global`` with DeepReg 1.0's options
            (:func:`adapt_config`), and which has no weights outside its backbone.
        checkpoint: a :class:`DeepRegCheckpoint` or a checkpoint path.

    Returns:
        ``{tfreg weight key: checkpoint key}`` of every weight assigned.

    Raises:
        CheckpointError: not a DeepReg checkpoint, a DeepReg 0.1 one, another backbone, a DeepReg variable
            with no place in the model, a model weight with no DeepReg variable, or different shapes; each
            named, and nothing is assigned then.
    """
    if not isinstance(checkpoint, DeepRegCheckpoint):
        path = checkpoint
        checkpoint = inspect_checkpoint(path)
        if checkpoint is None:
            raise CheckpointError(f"checkpoint {path} holds no DeepReg backbone (is it a tfreg checkpoint?)")
    _refuse_old(checkpoint)
    backbone = getattr(model, "backbone", None)
    kind = _tfreg_kind(backbone) if backbone is not None else "none"
    if kind != checkpoint.backbone:
        raise CheckpointError(
            f"checkpoint {checkpoint.prefix} holds DeepReg's {checkpoint.backbone!r} backbone and the "
            f"{type(model).__name__}'s backbone is {kind!r}: set train.backbone.name: {checkpoint.backbone}"
        )
    places = _global_places(backbone) if kind == "global" else _unet_places(backbone, kind)

    graph = _Graph(checkpoint.prefix)
    root = graph.walk(0, tuple(checkpoint.backbone_path.split("/")) if checkpoint.backbone_path else ())
    weights = named_weights(model)
    outside = [key for key in weights if not key.startswith("backbone/")]
    problems: List[str] = []
    if outside:
        problems.append(
            f"model weights outside the backbone, which a DeepReg checkpoint does not hold: {_listed(outside)}"
        )

    plan: Dict[str, str] = {}
    resolved = set()  # checkpoint keys that some place reaches (a shape mismatch is reported as such)
    unfilled, mismatched = [], []
    for key, alternatives in places:
        full = f"backbone/{key}"
        variable = weights.get(full)
        if variable is None:
            raise CheckpointError(f"internal: tfreg's {kind} backbone has no weight {full} (update the DeepReg map)")
        nodes = [graph.walk(root, path) for path in alternatives]
        node = next((n for n in nodes if n is not None and graph.values[n] is not None), None)
        if node is None:
            unfilled.append(f"{full} (DeepReg's place: {'/'.join(alternatives[0])})")
            continue
        ckpt_key = graph.values[node]
        resolved.add(ckpt_key)
        if tuple(graph.shapes[ckpt_key]) != tuple(variable.shape):
            short = _short(ckpt_key, checkpoint.backbone_path)
            mismatched.append(f"{full} {tuple(variable.shape)} <- {short} {tuple(graph.shapes[ckpt_key])}")
            continue
        plan[full] = ckpt_key
    mapped = {f"backbone/{key}" for key, _ in places}
    unfilled += [f"{k} (no DeepReg counterpart)" for k in weights if k.startswith("backbone/") and k not in mapped]
    under = [graph.values[n] for n in graph.nodes_under(root) if graph.values[n] is not None]
    unplaced = sorted(_short(k, checkpoint.backbone_path) for k in under if k not in resolved)
    if unplaced:
        problems.append(
            f"DeepReg variables (under {checkpoint.backbone_path or 'the root'}) with no place in the model: "
            f"{_listed(unplaced)}"
        )
    if unfilled:
        problems.append(f"model weights the checkpoint does not fill: {_listed(unfilled)}")
    if mismatched:
        problems.append(f"different shapes (model <- checkpoint): {_listed(mismatched)}")
    if problems:
        raise CheckpointError(
            f"DeepReg 1.0 {checkpoint.backbone} checkpoint {checkpoint.prefix} does not fit the model built from the "
            f"config{_hint(kind, backbone)}: " + "; ".join(problems)
        )
    values = {full: graph.tensor(ckpt_key) for full, ckpt_key in plan.items()}
    bad = [full for full, value in values.items() if not np.all(np.isfinite(value))]
    if bad:
        raise CheckpointError(f"checkpoint {checkpoint.prefix} has NaN/infinite values in {_listed(bad)}")
    for full, value in values.items():
        weights[full].assign(value)
    logger.info(
        "loaded %d weights of DeepReg's %s backbone from %s (%s)",
        len(plan),
        checkpoint.backbone,
        checkpoint.prefix,
        checkpoint.backbone_path or "root",
    )
    return plan


# ---------------------------------------------------------------------------------------------- for the engine
def resolve_checkpoint(ckpt_path: str) -> Tuple[str, Optional[DeepRegCheckpoint]]:
    """``(prefix, DeepRegCheckpoint or None)`` of a ``-k`` path: a DeepReg checkpoint is recognised by its
    content (its files are named like tfreg's), anything else goes through tfreg's own checks.

    Raises:
        CheckpointError: from :func:`inspect_checkpoint` or :func:`tfreg.engine.checkpoint.parse_ckpt_path`.
    """
    found = inspect_checkpoint(ckpt_path)
    if found is not None:
        return found.prefix, found
    prefix, _ = parse_ckpt_path(ckpt_path)
    return prefix, None


def restore_model(model: keras.Model, prefix: str, deepreg: Optional[DeepRegCheckpoint]) -> None:
    """Load a built model's weights for prediction: a DeepReg checkpoint by :func:`load_deepreg_checkpoint`,
    a tfreg one by :func:`tfreg.engine.checkpoint.restore_checkpoint` (no optimizer state)."""
    if deepreg is not None:
        load_deepreg_checkpoint(model, deepreg)
    else:
        restore_checkpoint(make_checkpoint(model), prefix, with_optimizer=False)


def check_init_parts(parts, checkpoint: DeepRegCheckpoint) -> None:
    """``train.init_from.parts`` for a DeepReg checkpoint: it fills the model's ``backbone`` and nothing else,
    so ``[backbone]``, ``["."]`` or ``{backbone: "."}`` (``{backbone: backbone}``).

    Raises:
        CheckpointError: other parts, naming them.
    """
    if isinstance(parts, dict):
        ok = list(parts) == ["backbone"] and parts["backbone"] in ("backbone", WHOLE_MODEL)
    else:
        ok = isinstance(parts, list) and len(parts) == 1 and parts[0] in ("backbone", WHOLE_MODEL)
    if not ok:
        raise CheckpointError(
            f"train.init_from: {checkpoint.prefix} is a DeepReg checkpoint, which holds one backbone: give parts: "
            f"[backbone], got {parts!r}"
        )


__all__ = [
    "BACKBONE_OPTIONS",
    "DeepRegCheckpoint",
    "inspect_checkpoint",
    "backbone_options",
    "adapt_config",
    "load_deepreg_checkpoint",
    "resolve_checkpoint",
    "restore_model",
    "check_init_parts",
]
