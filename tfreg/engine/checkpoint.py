"""TensorFlow object checkpoints in DeepReg's layout: ``<log>/<exp>/save/ckpt-<epoch>.{index,data-*}``.

Layout. :func:`make_checkpoint` returns a ``tf.train.Checkpoint`` with these children:

- ``model``: a :class:`NamedWeights` tree holding every weight of ``model.weights`` (trainable and
  non-trainable, e.g. BatchNormalization statistics) under a name key (below);
- ``optimizer`` (one optimizer, DeepReg's ``train.optimizer``) or one child per name of
  ``optimizers={"registration": ..., "segmentation": ...}`` (a trainer with several optimizers): each
  optimizer's own state (iteration count, learning rate, Adam moments), as
  ``optimizer/_iterations``, ``optimizer/_variables/<i>``... The optimizers are saved through views that
  leave out their references to the model's weights: TensorFlow files a variable under its SHORTEST path
  from the root, which would otherwise be ``optimizer/_trainable_variables/<i>`` instead of its name key;
- ``save_counter`` (written by ``tf.train.CheckpointManager``).

The number after ``ckpt-`` is the number of completed epochs, which becomes the resumed run's
``initial_epoch``; :func:`restore_checkpoint` resumes (model and every optimizer) or loads the model for
prediction, and :func:`restore_parts` loads chosen sub-networks only (``train.init_from``).

Key scheme (tfreg >= 0.2). Each weight is keyed by the path of ATTRIBUTE names from the model down to
the variable, e.g. ``backbone/encoders/0/conv/kernel``: :func:`named_weights` walks the attributes of each
layer (sorted by name) that hold a Keras layer, or lists/tuples/dicts of them (list items by index, dict
items by key), depth first; a layer's own weights (those not created by its sub-layers) are keyed by
``variable.name`` (``kernel``, ``moving_mean``), with ``_1``, ``_2``... appended if a name repeats in one
layer. Keras' bookkeeping attributes (``_layers``, ``_tracker``, a functional model's ``_operations``...)
are not walked; the layers of a functional or ``Sequential`` model, which hold their layers only there,
are reached through the public ``model.layers`` as ``layers/<i>``. A layer reachable along several paths
(shared) is keyed by the first path. Keras' auto-generated layer names (``conv3d_7``) are never used: they
depend on how many layers the process created before. A weight that the walk does not reach is an error
(never skipped). In the file a key reads
``model/backbone/encoders/0/conv/kernel/.ATTRIBUTES/VARIABLE_VALUE`` (TensorFlow escapes ``.`` as ``..``):
:func:`file_key` spells it, :func:`saved_weights` lists a file's keys and shapes.

Why not ``tf.train.Checkpoint(model=model)``: Keras 3 keeps sub-layers stored in Python lists (as the
backbones do) out of TensorFlow's object graph, so such a checkpoint silently misses most weights.

The optimizers' states are saved as each Keras optimizer tracks them: its slot variables (Adam moments) in
the order of the variables it was built with (``optimizer.build(model.trainable_variables)``), so
resuming needs the same optimizers built on the same variables in the same order (the model's key and
shape check runs first; a slot with a different shape is refused).

Legacy format (tfreg 0.1, up to commit 8d23adf): the model's weights were keyed by POSITION in
``model.weights``: ``model/w0000``, ``model/w0001``, ... (:class:`ModelWeights`), with the optimizer under
``optimizer``. :func:`restore_checkpoint` still restores such files (by position, shapes checked; the
optimizer too when resuming). :func:`restore_parts` refuses them: positional keys carry no sub-network
names. Re-saving a restored model writes the name-keyed format.

Partial restore: :func:`restore_parts` copies the weights under chosen parts (top-level attribute names
such as ``backbone``, or ``"."`` for the whole saved model) from a file into parts of a built model, e.g. a
standalone segmentation model's ``backbone`` into the ``segmenter`` of a composite model; no optimizer
state, shapes checked per key.

DeepReg 1.0's checkpoints (TF 2.3 Keras 2 models, the model zoo's ``ckpt-N``) have other keys: they are
recognised by content and read by name in :mod:`tfreg.engine.deepreg_checkpoint`. DeepReg 0.1's ``*.ckpt``
files are refused with a message saying so.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Dict, Iterator, List, Optional, Tuple, Union

import keras
import tensorflow as tf

from tfreg.file_safety import atomic_output, clear_incomplete

logger = logging.getLogger(__name__)

SAVE_DIR = "save"
CKPT_NAME = "ckpt"
#: the checkpoint child holding the model's weights
MODEL_KEY = "model"
#: the checkpoint child of the single optimizer (DeepReg's ``train.optimizer``)
OPTIMIZER_KEY = "optimizer"
#: the part name meaning "the whole model" in :func:`restore_parts`
WHOLE_MODEL = "."
_CKPT_RE = re.compile(r"^ckpt-(\d+)$")
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_LEGACY_KEY_RE = re.compile(r"^w(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SHARD_RE = re.compile(r"\.data-(\d+)-of-(\d+)$")
# file entries that are neither the model nor an optimizer
_NOT_OPTIMIZER = {MODEL_KEY, "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"}


class CheckpointError(ValueError):
    """A checkpoint path that does not exist, is not a ``ckpt-N`` prefix, or does not fit the model."""


def available_checkpoints(folder: str) -> list:
    """``ckpt-N`` prefixes in ``folder``, sorted by N."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(folder), "ckpt-*.index")):
        match = _CKPT_RE.match(os.path.basename(index)[: -len(".index")])
        if match:
            found.append((int(match.group(1)), index[: -len(".index")]))
    return [path for _, path in sorted(found)]


def parse_ckpt_path(ckpt_path: str) -> Tuple[str, int]:
    """Check ``ckpt_path`` (``.../save/ckpt-N``) and return ``(prefix, N)``.

    Raises:
        CheckpointError: a legacy ``*.ckpt`` file, a path not ending in ``ckpt-<N>``, or a checkpoint
            whose ``.index`` file does not exist (the message lists the checkpoints found in its folder).
    """
    path = os.path.expanduser(str(ckpt_path))
    name = os.path.basename(path)
    if name.endswith(".ckpt"):
        raise CheckpointError(
            f"--ckpt_path {ckpt_path}: DeepReg 0.1's '.ckpt' files (TF 2.3 Keras 2 save_weights) are not read into "
            "tfreg's Keras 3 models (DeepReg 1.0's save/ckpt-<epoch> are, see docs/deepreg-checkpoints.md); "
            "retrain with tfreg, which writes save/ckpt-<epoch>"
        )
    match = _CKPT_RE.match(name)
    if not match:
        raise CheckpointError(f"--ckpt_path {ckpt_path} must end with ckpt-<epoch>, e.g. logs/exp/save/ckpt-10")
    if not os.path.isfile(path + ".index"):
        folder = os.path.dirname(path) or "."
        found = available_checkpoints(folder) if os.path.isdir(folder) else []
        hint = (
            f"; checkpoints in {folder}: {[os.path.basename(p) for p in found]}"
            if found
            else (f"; {folder} has no checkpoints" if os.path.isdir(folder) else f"; folder {folder} does not exist")
        )
        raise CheckpointError(f"--ckpt_path {ckpt_path}: checkpoint not found (no {path}.index){hint}")
    check_checkpoint_files(path)
    return path, int(match.group(1))


def _listing(prefix: str) -> str:
    """The checkpoint's files with their sizes, for error messages."""
    files = sorted(glob.glob(glob.escape(prefix) + ".*"))
    return ", ".join(f"{os.path.basename(f)} ({os.path.getsize(f)} bytes)" for f in files) or "none"


def check_checkpoint_files(prefix: str) -> None:
    """Refuse a checkpoint whose data shards are not all there (a copy or a save that did not finish).

    Raises:
        CheckpointError: naming the missing shard files and the files that are there.
    """
    shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
    counts = {int(m.group(2)) for m in (_SHARD_RE.search(f) for f in shards) if m}
    expected = (
        {f"{os.path.basename(prefix)}.data-{i:05d}-of-{n:05d}" for n in counts for i in range(n)} if counts else set()
    )
    missing = (
        sorted(expected - {os.path.basename(f) for f in shards})
        if counts
        else [f"{os.path.basename(prefix)}.data-00000-of-..."]
    )
    if missing or len(counts) > 1:
        raise CheckpointError(
            f"checkpoint {prefix} is incomplete: missing {', '.join(missing) or 'consistent shards'} (files: "
            f"{_listing(prefix)}); copy the whole checkpoint, or use an earlier one"
        )


# ---------------------------------------------------------------------------------------------- key scheme
_BOOKKEEPING: Optional[Tuple[frozenset, tuple]] = None


def _keras_internals() -> Tuple[frozenset, tuple]:
    """``(bookkeeping attribute names, graph model classes)``.

    The names are those Keras itself sets on layers and models (bare, subclassed, functional, Sequential),
    read from fresh instances rather than listed, so that a new Keras version's bookkeeping is skipped too.
    The classes are those of functional and Sequential models (taken from instances: Keras exports no
    functional class), whose layers are reachable only through ``model.layers``. Cached after the first call.
    """
    global _BOOKKEEPING
    if _BOOKKEEPING is None:
        inputs = keras.Input((1,))
        functional = keras.Model(inputs, keras.layers.Identity()(inputs))
        samples = [
            keras.layers.Layer(),
            keras.Model(),
            functional,
            keras.Sequential([keras.Input((1,)), keras.layers.Identity()]),
        ]
        names = frozenset(name for sample in samples for name in vars(sample))
        _BOOKKEEPING = (names, (type(functional), keras.Sequential))
    return _BOOKKEEPING


def _join(*segments: str) -> str:
    return "/".join(s for s in segments if s)


def _check_segment(segment: str, where: str) -> str:
    if not segment or "/" in segment:
        raise CheckpointError(f"{where}: {segment!r} cannot be a checkpoint key segment (empty or containing '/')")
    return segment


def _layers_in(value, path: Tuple[str, ...]) -> Iterator[Tuple[str, keras.layers.Layer]]:
    """``(path, layer)`` of the layers held by an attribute value: a layer, or lists/tuples/dicts of them.

    ``path``: the attribute's key (checked already), then the list indices and dict keys below it.
    """
    if isinstance(value, keras.layers.Layer):
        for segment in path[1:]:  # checked only where a layer is found: other dicts may have any keys
            _check_segment(segment, f"the layer at {_join(*path)}")
        yield _join(*path), value
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from _layers_in(value[key], (*path, str(key)))
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for i, item in enumerate(value):
            yield from _layers_in(item, (*path, str(i)))


def named_weights(model: keras.layers.Layer) -> Dict[str, keras.Variable]:
    """Every weight of ``model.weights`` under its attribute-path key (module docstring), in walk order.

    Args:
        model: a built Keras model or layer (its variables exist).

    Returns:
        ``{"backbone/encoders/0/conv/kernel": variable, ...}``; the same keys for every model built from
        the same code, whatever else the process built before.

    Raises:
        ValueError: the model has no weights yet.
        CheckpointError: a weight is not reachable through attributes holding layers (naming its path), or
            a dict key cannot be a key segment.
    """
    weights = list(model.weights)
    if not weights:
        raise ValueError("the model has no weights yet: call it once (create_variables) before making a checkpoint")
    wanted = {id(w) for w in weights}
    skip, graph_models = _keras_internals()
    keys: Dict[str, keras.Variable] = {}
    keyed, visited = set(), set()

    def visit(layer: keras.layers.Layer, prefix: str) -> None:
        visited.add(id(layer))
        children: List[Tuple[str, keras.layers.Layer]] = []
        for name in sorted(vars(layer)):
            if name in skip or name.startswith("_self_"):  # Keras' and TensorFlow's own bookkeeping
                continue
            children.extend(_layers_in(vars(layer)[name], (_join(prefix, name),)))
        if isinstance(layer, graph_models):
            # functional and Sequential models hold their layers only in bookkeeping: reach them by position
            children.extend((_join(prefix, "layers", str(i)), sub) for i, sub in enumerate(layer.layers))
        # own weights: those not created by a sub-layer (Keras' own record of sub-layers is `_layers`; an
        # unreached sub-layer's weights then stay unkeyed and are reported, not taken as this layer's)
        sub_layers = list(getattr(layer, "_layers", None) or []) + [sub for _, sub in children]
        from_subs = {id(w) for sub in sub_layers if sub is not layer for w in sub.weights}
        used = {path[len(prefix) :].lstrip("/").split("/")[0] for path, _ in children}
        for weight in layer.weights:
            if id(weight) in from_subs or id(weight) not in wanted or id(weight) in keyed:
                continue
            base = _check_segment(weight.name, f"weight {weight.path}")
            name, count = base, 0
            while name in used:
                count += 1
                name = f"{base}_{count}"
            used.add(name)
            keys[_join(prefix, name)] = weight
            keyed.add(id(weight))
        for path, sub in children:
            if id(sub) not in visited:  # a shared layer: the first path wins
                visit(sub, path)

    visit(model, "")
    unreached = [w for w in weights if id(w) not in keyed]
    if unreached:
        w = unreached[0]
        raise CheckpointError(
            f"model weight {w.path} (shape {tuple(w.shape)}; {len(unreached)} weight(s) in all) is not reachable "
            f"from the {type(model).__name__} through attributes holding Keras layers or lists/tuples/dicts of "
            "them, so it would have no name in the checkpoint: keep the layer owning it in such an attribute"
        )
    return keys


def _tree(keys: Dict[str, keras.Variable]) -> dict:
    """``{"a/b/c": v}`` -> ``{"a": {"b": {"c": v}}}``."""
    root: dict = {}
    for key, variable in keys.items():
        node = root
        *parents, leaf = key.split("/")
        for segment in parents:
            node = node.setdefault(segment, {})
            if not isinstance(node, dict):
                raise CheckpointError(f"checkpoint key {key}: {segment!r} is both a weight and a layer")
        if leaf in node:
            raise CheckpointError(f"checkpoint key {key} is given twice")
        node[leaf] = variable
    return root


class _KeyNode(tf.__internal__.tracking.AutoTrackable):
    """One path segment: its children (nodes or variables) are tracked under their segment names, so the
    checkpoint's object graph spells the keys (no attribute of this object can clash with a segment)."""

    def __init__(self, children: dict):
        for name, child in children.items():
            self._track_trackable(_KeyNode(child) if isinstance(child, dict) else child, name=name)


class NamedWeights(_KeyNode):
    """The ``model`` child of a checkpoint: ``model.weights`` under their attribute-path keys.

    Attributes:
        model: the Keras model.
        keys: ``{key: variable}`` from :func:`named_weights`.
        shapes: ``{key: shape tuple}``.
    """

    def __init__(self, model: keras.layers.Layer):
        keys = named_weights(model)
        super().__init__(_tree(keys))
        self._self_setattr_tracking = False  # plain attributes below, not checkpoint children
        self.model = model
        self.keys = keys
        self.shapes = {key: tuple(v.shape) for key, v in keys.items()}


class ModelWeights(tf.Module):
    """tfreg 0.1's ``model`` child: ``model.weights`` as children ``w0000, w0001, ...`` by position.

    Used only to read legacy checkpoints (module docstring); the order of ``model.weights`` is the
    construction order, the same for every model built from the same code; shapes are checked.
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="model_weights")
        self.count = len(model.weights)
        self.shapes = [tuple(w.shape) for w in model.weights]
        self.paths = [w.path for w in model.weights]
        for i, weight in enumerate(model.weights):
            setattr(self, f"w{i:04d}", weight)


# ---------------------------------------------------------------------------------------------- reading files
def _escape(segment: str) -> str:
    """TensorFlow's escaping of an object-graph edge name in checkpoint keys."""
    return segment.replace(".", "..").replace("/", ".S")


def _unescape(segment: str) -> str:
    # left to right, so that an escaped "." followed by "S" ("..S") is not read as "/"
    return re.sub(r"\.([.S])", lambda m: "." if m.group(1) == "." else "/", segment)


def file_key(key: str) -> str:
    """The key under which a model weight keyed ``key`` (:func:`named_weights`) is stored in a checkpoint file,
    e.g. ``model/backbone/encoders/0/conv/kernel/.ATTRIBUTES/VARIABLE_VALUE``; for ``tf.train.load_checkpoint``."""
    return _join(MODEL_KEY, *(_escape(s) for s in key.split("/"))) + _VALUE_SUFFIX


def _file_entries(ckpt_path: str) -> Dict[str, Tuple[int, ...]]:
    try:
        return {key: tuple(shape) for key, shape in tf.train.list_variables(ckpt_path)}
    except (tf.errors.OpError, ValueError, IndexError) as err:
        raise CheckpointError(
            f"checkpoint {ckpt_path} cannot be read (truncated or not a checkpoint; files: {_listing(ckpt_path)}): "
            f"{str(err).strip()[:300]}"
        ) from None


def saved_weights(ckpt_path: str) -> Dict[str, Tuple[int, ...]]:
    """``{key: shape}`` of the model weights in a checkpoint file: name keys (``backbone/.../kernel``), or
    ``w0000``-style keys for a legacy tfreg 0.1 file; empty when the file holds no tfreg model."""
    shapes = {}
    prefix = MODEL_KEY + "/"
    for key, shape in _file_entries(ckpt_path).items():
        if key.startswith(prefix) and key.endswith(_VALUE_SUFFIX):
            path = key[len(prefix) : -len(_VALUE_SUFFIX)]
            shapes["/".join(_unescape(s) for s in path.split("/"))] = shape
    return shapes


def _is_legacy(saved: Dict[str, Tuple[int, ...]]) -> bool:
    return bool(saved) and all(_LEGACY_KEY_RE.match(key) for key in saved)


def _saved_optimizers(ckpt_path: str) -> List[str]:
    """Top-level children of a checkpoint file other than the model and the save counter (the optimizers)."""
    return sorted({key.split("/")[0] for key in _file_entries(ckpt_path)} - _NOT_OPTIMIZER)


def _top_parts(keys) -> List[str]:
    return sorted({key.split("/")[0] for key in keys})


def _mismatches(model_shapes: Dict[str, tuple], file_shapes: Dict[str, tuple], limit: int = 5) -> List[str]:
    """Key-by-key differences: missing in the file, extra in the file, then different shapes (at most
    ``limit`` listed, the structural ones first: they say most about which model wrote the file)."""
    problems = [
        f"{key}: shape {shape} in the model, missing in the file"
        for key, shape in model_shapes.items()
        if key not in file_shapes
    ]
    problems += [
        f"{key}: shape {shape} in the file, not in the model"
        for key, shape in file_shapes.items()
        if key not in model_shapes
    ]
    problems += [
        f"{key}: shape {file_shapes[key]} in the file and {shape} in the model"
        for key, shape in model_shapes.items()
        if key in file_shapes and file_shapes[key] != shape
    ]
    if len(problems) > limit:
        problems = problems[:limit] + [f"... {len(problems) - limit} more"]
    return problems


# ---------------------------------------------------------------------------------------------- checkpoints
class _StateView(tf.__internal__.tracking.Trackable):
    """An optimizer (or one of its containers) as a checkpoint node WITHOUT its references to the model's
    variables (Keras optimizers track the variables they update as ``_trainable_variables``).

    Why: TensorFlow stores each variable under its SHORTEST path from the checkpoint's root, and
    ``optimizer/_trainable_variables/3`` is shorter than ``model/backbone/encoders/0/conv/kernel``, so the
    model's weights would be filed under the optimizer's positions. Without those edges every model weight
    is stored under its name key; the optimizer's own state (iterations, learning rate, slot variables) is
    reached through the view exactly as through the optimizer.
    """

    def __init__(self, target, model_ids: frozenset, memo: dict):
        self._target = target
        self._model_ids = model_ids
        self._memo = memo

    def _references_model(self, child) -> bool:
        if id(child) in self._model_ids:
            return True
        return isinstance(child, Sequence) and len(child) > 0 and all(id(c) in self._model_ids for c in child)

    def _view(self, child):
        if isinstance(child, (tf.Variable, keras.Variable)):
            return child  # a leaf: restored and saved by the variable itself
        if id(child) not in self._memo:  # one view per object: a state shared by two paths stays one node
            self._memo[id(child)] = _StateView(child, self._model_ids, self._memo)
        return self._memo[id(child)]

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = self._target._trackable_children(save_type, **kwargs)
        return {name: self._view(c) for name, c in children.items() if not self._references_model(c)}

    def _lookup_dependency(self, name, cached_dependencies=None):
        if cached_dependencies:
            return cached_dependencies.get(name)
        return self._trackable_children().get(name)


class ModelCheckpoint(tf.train.Checkpoint):
    """The ``tf.train.Checkpoint`` of :func:`make_checkpoint`: ``model`` (a :class:`NamedWeights`) and the
    optimizers under their names.

    The optimizer children are views of the optimizers without their references to the model's variables
    (:class:`_StateView`), so that TensorFlow files every model weight under its name key.

    Attributes (not checkpoint children):
        keras_model: the model whose weights ``model`` holds.
        optimizers: ``{child name: Keras optimizer}``, e.g. ``{"optimizer": adam}``.
        optimizer_names: their names, e.g. ``("optimizer",)``.
    """

    def __init__(self, model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer]):
        weights = NamedWeights(model)
        model_ids = frozenset(id(v) for v in weights.keys.values())
        memo: dict = {}
        views = {name: _StateView(opt, model_ids, memo) for name, opt in optimizers.items()}
        super().__init__(**{MODEL_KEY: weights}, **views)
        # object.__setattr__: plain attributes, not tracked as checkpoint children
        object.__setattr__(self, "keras_model", model)
        object.__setattr__(self, "optimizers", dict(optimizers))
        object.__setattr__(self, "optimizer_names", tuple(optimizers))


def _check_optimizers(optimizer, optimizers) -> Dict[str, keras.optimizers.Optimizer]:
    if optimizer is not None and optimizers is not None:
        raise ValueError("make_checkpoint: give optimizer= (one) or optimizers= (a dict by name), not both")
    if optimizers is None:
        optimizers = {} if optimizer is None else {OPTIMIZER_KEY: optimizer}
    if not isinstance(optimizers, Mapping):
        raise ValueError(f"optimizers must be a dict {{name: optimizer}}, got {type(optimizers).__name__}")
    for name, opt in optimizers.items():
        if (
            not isinstance(name, str)
            or not _NAME_RE.match(name)
            or name in _NOT_OPTIMIZER
            or hasattr(tf.train.Checkpoint, name)
        ):
            raise ValueError(
                f"optimizers: {name!r} cannot name a checkpoint child: use a letter followed by letters, digits or "
                f"'_', other than {sorted(_NOT_OPTIMIZER - {'_CHECKPOINTABLE_OBJECT_GRAPH'})} and tf.train.Checkpoint "
                "attributes (save, restore, ...)"
            )
        if not isinstance(opt, keras.optimizers.Optimizer):
            raise ValueError(f"optimizers[{name!r}] must be a keras.optimizers.Optimizer, got {type(opt).__name__}")
    return dict(optimizers)


def make_checkpoint(
    model: keras.Model,
    optimizer: Optional[keras.optimizers.Optimizer] = None,
    optimizers: Optional[Dict[str, keras.optimizers.Optimizer]] = None,
) -> ModelCheckpoint:
    """The checkpoint of a built model and its optimizer(s) (module docstring for the layout).

    Args:
        model: a built model (call it once, e.g. ``create_variables``, first).
        optimizer: one optimizer, saved as ``optimizer`` (DeepReg's ``train.optimizer``).
        optimizers: or several, ``{"registration": opt_a, "segmentation": opt_b}``, each saved under its
            name (letters, digits, ``_``; not ``model``/``save_counter``).

    Raises:
        ValueError: the model has no weights yet, both ``optimizer`` and ``optimizers`` are given, or an
            optimizer name is invalid.
        CheckpointError: a model weight has no attribute-path key (:func:`named_weights`).
    """
    return ModelCheckpoint(model, _check_optimizers(optimizer, optimizers))


def _optimizer_names(checkpoint: tf.train.Checkpoint) -> Tuple[str, ...]:
    if isinstance(checkpoint, ModelCheckpoint):
        return checkpoint.optimizer_names
    return (OPTIMIZER_KEY,) if getattr(checkpoint, OPTIMIZER_KEY, None) is not None else ()


def check_checkpoint_fits(weights: Union[NamedWeights, ModelWeights], ckpt_path: str) -> None:
    """CheckpointError unless the checkpoint holds exactly the model's weights with the same shapes.

    A name-keyed file is compared key by key (the message names each missing, extra or differently shaped
    key with both shapes); a legacy positional file position by position.
    """
    saved = saved_weights(ckpt_path)
    if not saved:
        problems = ["it holds no tfreg model weights"]
    elif _is_legacy(saved):
        positional = weights if isinstance(weights, ModelWeights) else ModelWeights(weights.model)
        problems = []
        if len(saved) != positional.count:
            problems.append(f"the legacy file holds {len(saved)} weights and the model has {positional.count}")
        else:
            for i, shape in enumerate(positional.shapes):
                key = f"w{i:04d}"
                if saved.get(key) != shape:
                    problems.append(
                        f"legacy weight {key} (the model's {positional.paths[i]}) has shape {saved.get(key)} in the "
                        f"file and {shape} in the model"
                    )
                    break
    elif isinstance(weights, ModelWeights):
        problems = ["the file is name-keyed and the model's weights are positional (ModelWeights); use make_checkpoint"]
    else:
        problems = _mismatches(weights.shapes, saved)
    if problems:
        raise CheckpointError(
            f"checkpoint {ckpt_path} does not fit the model built from the config ({'; '.join(problems)}); was it "
            "written with a different method, backbone or image shape?"
        )


def _restore_objects(checkpoint: tf.train.Checkpoint, ckpt_path: str, with_optimizer: bool) -> None:
    status = None
    try:
        status = checkpoint.restore(ckpt_path)
        if with_optimizer:
            status.assert_consumed()
        else:
            status.assert_existing_objects_matched()
            status.expect_partial()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
        if status is not None:
            status.expect_partial()  # the error below says it all; no deletion-time warning flood
        detail = str(err).strip().splitlines()
        detail = " ".join(detail[:3])[:600]
        raise CheckpointError(
            f"checkpoint {ckpt_path} cannot be restored into the model and optimizer built from the config: {detail}"
        ) from None
    except (tf.errors.OpError, IndexError) as err:  # a data file cut short or unreadable
        if status is not None:
            status.expect_partial()
        raise CheckpointError(
            f"checkpoint {ckpt_path} cannot be read: its files are truncated or damaged (files: {_listing(ckpt_path)}; "
            f"{str(err).strip().splitlines()[0][:200]}); use an earlier checkpoint"
        ) from None


def restore_checkpoint(checkpoint: tf.train.Checkpoint, ckpt_path: str, with_optimizer: bool) -> None:
    """Restore ``ckpt_path`` into an already built model (and its optimizers).

    Args:
        checkpoint: from :func:`make_checkpoint`; its model (and optimizers) must have their variables
            (call the model once and ``optimizer.build`` first).
        ckpt_path: a checked ``ckpt-N`` prefix, name-keyed or legacy positional (tfreg 0.1).
        with_optimizer: resume training: the model's and every optimizer's state must all be in the
            file. False (predict): only the model's weights are restored.

    Raises:
        CheckpointError: the checkpoint was written by a different model (a missing, extra or differently
            shaped weight, named with both shapes), or lacks the state of an optimizer to resume.
    """
    weights = checkpoint.model
    check_checkpoint_fits(weights, ckpt_path)
    names = _optimizer_names(checkpoint)
    if with_optimizer and names:
        in_file = _saved_optimizers(ckpt_path)
        missing, extra = [n for n in names if n not in in_file], [n for n in in_file if n not in names]
        if missing or extra:
            raise CheckpointError(
                f"checkpoint {ckpt_path} holds the state of the optimizer(s) {in_file} and resuming needs exactly "
                f"{list(names)} (missing: {missing}, not used: {extra}); was it written by another trainer?"
            )
    target = checkpoint
    if _is_legacy(saved_weights(ckpt_path)) and isinstance(weights, NamedWeights):
        # tfreg 0.1 file: the same optimizers, the model's weights by position
        optimizers = checkpoint.optimizers if isinstance(checkpoint, ModelCheckpoint) else {}
        children = {n: optimizers.get(n, getattr(checkpoint, n)) for n in names} if with_optimizer else {}
        target = tf.train.Checkpoint(**{MODEL_KEY: ModelWeights(weights.model)}, **children)
        logger.info("%s is a tfreg 0.1 checkpoint: model weights restored by position", ckpt_path)
    _restore_objects(target, ckpt_path, with_optimizer)


# ---------------------------------------------------------------------------------------------- partial restore
def _normalize_parts(parts) -> List[Tuple[str, str]]:
    """``[(target, source)]``, ``""`` meaning the whole model; overlapping targets refused."""
    if isinstance(parts, str):
        parts = [parts]
    if isinstance(parts, Mapping):
        pairs = list(parts.items())
    elif isinstance(parts, Sequence):
        pairs = [(p, p) for p in parts]
    else:
        raise CheckpointError(
            f"parts must be a list of part names or a dict {{target_part: source_part}}, got {type(parts).__name__}"
        )
    if not pairs:
        raise CheckpointError("parts is empty: name the parts to restore, e.g. ['backbone'] or {'segmenter': '.'}")
    normalized = []
    for target, source in pairs:
        if not isinstance(target, str) or not isinstance(source, str):
            raise CheckpointError(f"parts: {target!r}: {source!r}: part names must be strings")
        t, s = target.strip("/"), source.strip("/")
        normalized.append(("" if t == WHOLE_MODEL else t, "" if s == WHOLE_MODEL else s))
    for i, (a, _) in enumerate(normalized):
        for b, _ in normalized[i + 1 :]:
            if a == b or not a or not b or a.startswith(b + "/") or b.startswith(a + "/"):
                raise CheckpointError(
                    f"parts: the targets {a or WHOLE_MODEL!r} and {b or WHOLE_MODEL!r} overlap; each weight is "
                    "restored from one source"
                )
    return normalized


def _select(keys, part: str) -> Dict[str, object]:
    """``{sub key: value}`` of the entries under ``part`` (``""``: all; a weight key itself: ``{"": value}``)."""
    if not part:
        return dict(keys.items())
    if part in keys:
        return {"": keys[part]}
    return {key[len(part) + 1 :]: value for key, value in keys.items() if key.startswith(part + "/")}


def restore_parts(model: keras.Model, ckpt_path: str, parts) -> Dict[str, int]:
    """Copy the weights of chosen parts of a saved model into parts of a built model (no optimizer state).

    For ``train.init_from: {path, parts}`` (a fresh optimizer, epoch 0) and for loading a pretrained
    sub-network into a composite model.

    Args:
        model: a built model (its variables exist).
        ckpt_path: a name-keyed ``ckpt-N`` prefix (tfreg >= 0.2).
        parts: attribute names present in both models, ``["backbone"]``; or ``{target_part: source_part}``,
            where ``source_part`` ``"."`` (or ``""``) is the whole saved model, e.g.
            ``{"segmenter": "."}`` restores a standalone model into the ``segmenter`` of a composite one and
            ``{"segmenter": "backbone"}`` its ``backbone``. Nested paths (``"backbone/encoders/0"``) work too.

    Returns:
        ``{target_part: number of weights restored}`` (``"."`` for the whole model).

    Raises:
        CheckpointError: a legacy positional file (its keys carry no names), a part missing in the file or
            the model (the message lists the top-level parts of each), a key missing on one side or with a
            different shape (named with both shapes), or ill-formed ``parts``. Nothing is assigned then.
    """
    prefix, _ = parse_ckpt_path(ckpt_path)
    pairs = _normalize_parts(parts)
    saved = saved_weights(prefix)
    if not saved:
        raise CheckpointError(f"checkpoint {prefix} holds no tfreg model weights")
    if _is_legacy(saved):
        raise CheckpointError(
            f"checkpoint {prefix} is a tfreg 0.1 checkpoint whose weights are keyed by position (w0000, ...): "
            "parts cannot be found in it. Restore it whole (restore_checkpoint) into the model it was trained "
            "with and save it again to get a name-keyed checkpoint"
        )
    keys = named_weights(model)
    plan = []
    for target, source in pairs:
        source_shapes = _select(saved, source)
        if not source_shapes:
            raise CheckpointError(
                f"parts: {source!r} is not a part of the model saved in {prefix}; its parts: {_top_parts(saved)}"
            )
        targets = _select(keys, target)
        if not targets:
            raise CheckpointError(
                f"parts: {target!r} is not a part of the {type(model).__name__}; its parts: {_top_parts(keys)}"
            )
        problems = _mismatches({k: tuple(v.shape) for k, v in targets.items()}, source_shapes)
        if problems:
            raise CheckpointError(
                f"part {source or WHOLE_MODEL!r} of {prefix} does not fit the model's {target or WHOLE_MODEL!r} "
                f"(keys relative to the parts): {'; '.join(problems)}"
            )
        plan.append((target, source, targets))
    reader = tf.train.load_checkpoint(prefix)
    summary = {}
    for target, source, targets in plan:
        for sub, variable in targets.items():
            variable.assign(reader.get_tensor(file_key(_join(source, sub))))
        summary[target or WHOLE_MODEL] = len(targets)
        logger.info("restored %d weights of %s from %s:%s", len(targets), target or "the model", prefix, source or ".")
    return summary


_LEFTOVER_RES = (
    re.compile(r"^ckpt-\d+_temp$"),  # TensorFlow's shard folder, merged and removed when a save completes
    re.compile(r"^checkpoint\.tmp[0-9a-f]+$"),  # TensorFlow's scratch copy of the checkpoint state file
)
_DATA_RE = re.compile(r"^(ckpt-\d+)\.data-\d+-of-\d+$")


def clean_checkpoint_leftovers(folder: str) -> List[str]:
    """Remove what a killed checkpoint save left in ``folder``; returns the paths removed.

    A save writes ``ckpt-N_temp/`` (the shards) and ``checkpoint.tmp<hex>`` (the state file) under scratch
    names, then moves the data files into place and writes ``ckpt-N.index`` last. A kill in between leaves
    the scratch entries, or ``ckpt-N.data-*`` files without their index, which no restore can use. Only
    those are removed; complete checkpoints are never touched. Called when a run starts saving into
    ``folder`` (one run saves into one folder at a time: ``tfreg_train`` refuses a used log folder).
    """
    if not os.path.isdir(folder):
        return []
    names = set(os.listdir(folder))
    removed = []
    for name in sorted(names):
        data = _DATA_RE.match(name)
        orphan = data is not None and f"{data.group(1)}.index" not in names
        if orphan or any(pattern.match(name) for pattern in _LEFTOVER_RES):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed.append(path)
    return removed


def export_models(model, directory: str) -> List[str]:
    """Write each sub-network a model declares in ``exported_models()`` as ``<directory>/<name>.keras``.

    Each file is written under a scratch name and renamed into place (:func:`tfreg.file_safety.atomic_output`),
    so a reader (the ``embedding`` loss of another run) sees the previous complete file or the new one. A
    model without the method (a user class predating it) exports nothing.

    Returns:
        the paths written.

    Raises:
        ValueError: a name that is not a plain file name (letters, digits, ``_``) or a value that is not a
            ``keras.Model``.
    """
    exported = getattr(model, "exported_models", None)
    models = exported() if callable(exported) else {}
    written = []
    for name, sub in (models or {}).items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"{type(model).__name__}.exported_models(): name {name!r} must be a file name of letters, digits "
                "and '_' starting with a letter"
            )
        if not isinstance(sub, keras.Model):
            raise ValueError(f"{type(model).__name__}.exported_models()[{name!r}] must be a keras.Model, got {sub!r}")
        target = os.path.join(directory, f"{name}.keras")
        with atomic_output(target) as scratch:
            sub.save(scratch)
        written.append(target)
        logger.info("saved %s", target)
    return written


class CheckpointSaver(keras.callbacks.Callback):
    """Save ``save/ckpt-<epoch>`` every ``save_period`` epochs and after the last epoch (DeepReg's rule).

    With each checkpoint, the sub-networks the model declares in ``exported_models()`` are written as
    ``save/<name>.keras`` (:func:`export_models`; the latest one, overwritten at every save).

    Only finite weights are saved: when ``guard`` (a :class:`tfreg.engine.divergence.DivergenceGuard`) has
    seen a non-finite loss, nothing is written; when the weights themselves hold a NaN or an infinity,
    :class:`tfreg.engine.divergence.TrainingDiverged` is raised instead of saving them. The last checkpoint
    on disk is therefore always a finite one.

    Args:
        checkpoint: from :func:`make_checkpoint`.
        directory: the ``save`` folder.
        save_period: epochs between saves; a save happens when ``(epoch + 1) % save_period == 0``.
        guard: the run's divergence guard, if any (it is told the last checkpoint written).
        run_folder: the run's log folder, if any: its incomplete marker
            (:func:`tfreg.file_safety.mark_incomplete`) is removed once a checkpoint is written, so a later
            failure keeps the folder for resuming.
    """

    def __init__(
        self,
        checkpoint: tf.train.Checkpoint,
        directory: str,
        save_period: int,
        guard=None,
        run_folder: Optional[str] = None,
    ):
        super().__init__()
        if isinstance(save_period, bool) or int(save_period) != save_period or save_period < 1:
            raise ValueError(f"save_period must be a positive integer, got {save_period!r}")
        self.checkpoint = checkpoint
        for path in clean_checkpoint_leftovers(directory):
            logger.warning("removed %s, left by a checkpoint save that did not finish", path)
        self.manager = tf.train.CheckpointManager(
            checkpoint, directory=directory, max_to_keep=None, checkpoint_name=CKPT_NAME
        )
        self.save_period = int(save_period)
        self.guard = guard
        self.run_folder = run_folder
        self.last_epoch: Optional[int] = None
        self.last_saved: Optional[int] = None
        self.last_path: Optional[str] = self.manager.latest_checkpoint

    def save(self, epoch_number: int) -> Optional[str]:
        """Write ``ckpt-<epoch_number>``; returns its prefix (None when the run diverged: nothing written)."""
        from tfreg.engine.divergence import TrainingDiverged, non_finite_weights

        if self.guard is not None and self.guard.diverged:
            logger.error("not saving ckpt-%d: the loss is no longer finite", epoch_number)
            return None
        model = getattr(self, "_model", None)
        bad = non_finite_weights(model) if model is not None else []
        if bad:
            kept = (
                f"the last checkpoint, {self.last_path}, is finite and kept"
                if self.last_path
                else "no checkpoint was saved"
            )
            raise TrainingDiverged(
                f"training diverged: after epoch {epoch_number} the weights {', '.join(bad[:3])}"
                f"{' ...' if len(bad) > 3 else ''} are not finite; training stopped and {kept}. Lower "
                "train.optimizer.learning_rate, check the data and the loss weights"
            )
        path = self.manager.save(checkpoint_number=epoch_number)
        if model is not None:
            export_models(model, os.path.dirname(path))
        self.last_saved = epoch_number
        self.last_path = path
        if self.guard is not None:
            self.guard.last_checkpoint = path
        if self.run_folder is not None:
            clear_incomplete(self.run_folder)  # the run has a result now: never removed as a failed start
        logger.info("saved checkpoint %s", path)
        return path

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = epoch + 1
        if self.last_epoch % self.save_period == 0:
            self.save(self.last_epoch)

    def on_train_end(self, logs=None):
        if self.last_epoch is not None and self.last_saved != self.last_epoch:
            self.save(self.last_epoch)


__all__ = [
    "SAVE_DIR",
    "CKPT_NAME",
    "MODEL_KEY",
    "OPTIMIZER_KEY",
    "WHOLE_MODEL",
    "CheckpointError",
    "named_weights",
    "NamedWeights",
    "ModelWeights",
    "ModelCheckpoint",
    "file_key",
    "saved_weights",
    "check_checkpoint_fits",
    "available_checkpoints",
    "parse_ckpt_path",
    "check_checkpoint_files",
    "make_checkpoint",
    "restore_checkpoint",
    "restore_parts",
    "CheckpointSaver",
    "clean_checkpoint_leftovers",
    "export_models",
]
