"""From tensor names to the tensors a loss is called on (``keras.ops`` only).

A model's loss table (``RegistrationModel.loss_inputs``) names, per loss category, the tensors its
losses are called on positionally; a loss' declared extra inputs (:mod:`tfreg.loss_inputs`) are
called by keyword. Both kinds of name are looked up in one namespace: the model's inputs (``x``) and
outputs (``y_pred``), with the model's aliases (``fixed`` -> ``fixed_label``, ...).

Where a mask lives. The DDF is defined on the fixed grid: ``ddf[x]`` displaces fixed voxel ``x`` to
moving point ``x + ddf[x]``. A mask input is therefore brought onto the grid of the loss' first argument
(the DDF for regularisers), by linear resizing when the two grids' shapes differ:

- ``moving_label`` (alias ``moving``): the UNWARPED moving label read as if it lay on the fixed grid.
  This is the rigidity thesis' choice (Staring's penalty weighted by the moving image's rigid
  structures); it is exact for the structures' own voxels only when the two images are (rigidly)
  pre-aligned and share a grid, which the thesis' preprocessing ensures.
- ``fixed_label`` (alias ``fixed``): the structures where they are in the fixed image.
- ``pred_fixed_label`` (alias ``warped_moving``): the moving label warped by the current DDF, i.e. where
  the moving structures land on the fixed grid; it depends on the DDF (its gradient flows through).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from keras import ops

from tfreg.loss_inputs import TensorSource
from tfreg.ops.resize import resize


def lookup(name: str, x: Mapping[str, Any], y_pred: Mapping[str, Any], aliases: Mapping[str, str]):
    """The tensor called ``name`` (or its alias' target) in the outputs, then the inputs; None if absent."""
    name = aliases.get(name, name)
    if name in y_pred:
        return y_pred[name]
    if isinstance(x, Mapping) and name in x:
        return x[name]
    return None


def with_channels(tensor, ndim: int):
    """``(B, *S)`` -> ``(B, *S, 1)``; ``(B, *S, C)`` unchanged; float32. ``ndim`` = number of spatial axes."""
    tensor = ops.cast(tensor, "float32")
    if len(tensor.shape) == ndim + 1:
        return ops.expand_dims(tensor, -1)
    if len(tensor.shape) != ndim + 2:
        raise ValueError(f"expected (batch, *spatial[, channels]) with {ndim} spatial axes, got {tuple(tensor.shape)}")
    return tensor


def select_channels(mask, source: TensorSource, ndim: int):
    """Apply ``source.channels`` and ``source.combine`` to a mask: ``(B, *S[, C])`` -> ``(B, *S, K)``.

    ``K`` is the number of selected channels (``separate``) or 1 (``union``: the voxel-wise maximum, so
    that overlapping soft labels stay in [0, 1]).

    Raises:
        ValueError: a selected channel index that the tensor does not have.
    """
    mask = with_channels(mask, ndim)
    if source.channels is not None:
        count = mask.shape[-1]
        bad = [c for c in source.channels if count is not None and c >= count]
        if bad:
            raise ValueError(
                f"{source.name} has {count} channel(s); channels {bad} do not exist (labels: the label files' "
                "channels, all of them in a sample only with dataset.sample_label: stack)"
            )
        mask = ops.take(mask, list(source.channels), axis=-1)
    if source.combine == "union":
        mask = ops.max(mask, axis=-1, keepdims=True)
    return mask


def on_grid(mask, spatial):
    """``mask (B, *S', K)`` resized (linear) onto the spatial shape ``spatial``; unchanged when equal."""
    spatial = tuple(int(s) for s in spatial)
    if tuple(mask.shape[1:-1]) == spatial:
        return mask
    return resize(mask, spatial)


def resolve_inputs(
    sources: Dict[str, TensorSource],
    specs: Dict[str, Any],
    first_arg,
    x: Mapping[str, Any],
    y_pred: Mapping[str, Any],
    aliases: Mapping[str, str],
    ndim: int,
    loss_label: str,
) -> Dict[str, Any]:
    """The keyword tensors of one loss call.

    Args:
        sources: ``{keyword: TensorSource}`` from the loss' config entry.
        specs: ``{keyword: LossInput}`` the loss declares.
        first_arg: the loss' first positional tensor (masks are brought onto its grid).
        x, y_pred: the model's inputs and outputs.
        aliases: the model's tensor aliases.
        ndim: number of spatial axes.
        loss_label: the loss' log name, for errors.

    Raises:
        ValueError: a wired tensor that this batch does not carry (e.g. ``moving_label`` on unlabeled
            data), or a selected channel it does not have, naming the loss and the tensor.
    """
    kwargs = {}
    for key, source in sources.items():
        tensor = lookup(source.name, x, y_pred, aliases)
        if tensor is None:
            raise ValueError(
                f"{loss_label}: its input {key!r} comes from {source.name!r}, which this batch does not carry "
                f"(available: {sorted(set(y_pred) | set(x if isinstance(x, Mapping) else {}))})"
            )
        if specs[key].is_mask:
            try:
                tensor = select_channels(tensor, source, ndim)
            except ValueError as err:
                raise ValueError(f"{loss_label}: its input {key!r}: {err}") from None
            tensor = on_grid(tensor, first_arg.shape[1 : 1 + ndim])
        kwargs[key] = tensor
    return kwargs


def call_loss(loss, args, kwargs: Optional[Dict[str, Any]] = None):
    """Call a built loss on positional tensors and keyword inputs; returns ``(B,)``.

    ``keras.losses.Loss.__call__`` takes only ``(y_true, y_pred, sample_weight)``, so a Keras loss with
    keyword inputs is called through its ``call`` (losses are built with ``reduction=None``, so the
    result is the same per-sample vector).
    """
    if not kwargs:
        return loss(*args)
    import keras

    if isinstance(loss, keras.losses.Loss):
        return loss.call(*args, **kwargs)
    return loss(*args, **kwargs)


__all__ = ["lookup", "with_channels", "select_channels", "on_grid", "resolve_inputs", "call_loss"]
