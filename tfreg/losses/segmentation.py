"""Segmentation losses of the seed methods: focal, multi-class Dice/CE, contour (+CE) and embedding losses.

Registered (``loss_class``), all ``keras.losses.Loss`` returning one value per sample ``(B,)``:

===============================  =================================  ======================================
name                             class                              value
===============================  =================================  ======================================
``focal``                        :class:`FocalLoss`                 focal loss (WSSAMNet), gamma = 2
``multiclass-dice``              :class:`MultiClassDiceLoss`        ``-`` mean over classes of Dice
``multiclass-cross-entropy``     :class:`MultiClassCrossEntropy`    categorical cross-entropy
``contour``                      :class:`ContourLoss`               ``||Lap(p) - Lap(t)||_2`` (He, He and Cao 2022)
``contour-ce``                   :class:`ContourCrossEntropy`       ``CE + lambda ct``, lambda = 1.75
``embedding``                    :class:`EmbeddingLoss`             ``||enc(p) - enc(t)||^2`` (He, He and Cao 2022)
===============================  =================================  ======================================

DeepReg's ``dice`` and ``cross-entropy`` (:mod:`tfreg.losses.label`) sum over every channel, so a
multi-channel label counts as one foreground; the ``multiclass-*`` losses here score each class (channel)
separately, as the segmentation networks of WSSAMNet++ and macJNet need.

Multi-class inputs: ``y_pred`` is ``(B, *S, C)`` class probabilities (or logits with
``from_logits=True``); ``y_true`` is either one-hot of the same shape or an integer label map ``(B, *S)``
or ``(B, *S, 1)`` with values in ``0 .. C-1``, which is one-hot encoded first. A 2-D one-hot ``y_true`` with
``C`` channels has the same shape as ``y_pred``, so the two layouts never clash.
"""

import os
from typing import Optional, Sequence, Union

import keras
import numpy as np
from keras import ops

from tfreg.checks import BOUNDARIES, check_bool, check_choice, check_number
from tfreg.loss_inputs import LabelChannelNeed
from tfreg.losses.base import EPS, ImageLoss, mean_per_sample, sum_per_sample
from tfreg.ops.filters import STENCILS, laplacian
from tfreg.registry import REGISTRY


def to_one_hot(y_true, y_pred):
    """``y_true`` as float32 one-hot ``(B, *S, C)`` matching ``y_pred`` ``(B, *S, C)``.

    ``y_true`` may be one-hot/soft labels of ``y_pred``'s shape, or integer labels ``(B, *S)`` or
    ``(B, *S, 1)`` (values ``0 .. C-1``; stored as floats is fine, they are rounded).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    rank = len(y_pred.shape)
    if rank not in (4, 5):
        raise ValueError(
            f"y_pred must be (batch, *spatial, classes) with 2 or 3 spatial axes, got shape {tuple(y_pred.shape)}"
        )
    classes = y_pred.shape[-1]
    same = len(y_true.shape) == rank and tuple(y_true.shape[1:]) == tuple(y_pred.shape[1:])
    if same and not (classes != 1 and y_true.shape[-1] == 1):
        return ops.cast(y_true, "float32")
    if len(y_true.shape) == rank and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    if len(y_true.shape) != rank - 1 or tuple(y_true.shape[1:]) != tuple(y_pred.shape[1:-1]):
        raise ValueError(
            f"y_true must be one-hot of y_pred's shape {tuple(y_pred.shape)} or an integer label map of shape "
            f"(batch, *spatial) or (batch, *spatial, 1), got shape {tuple(y_true.shape)}"
        )
    labels = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    return ops.one_hot(labels, classes, dtype="float32")


class _ClassLoss(ImageLoss):
    """Base of the multi-class losses: ``y_true`` one-hot or integer labels, ``y_pred`` ``(B, *S, C)``."""

    def __init__(self, from_logits: bool = False, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(spatial_dims=None, name=name, reduction=reduction, dtype=dtype)
        self.from_logits = check_bool(from_logits, "from_logits")

    def probabilities(self, y_pred):
        """Softmax over classes when ``from_logits``, else ``y_pred`` as float32."""
        y_pred = ops.cast(y_pred, "float32")
        return ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred

    def call(self, y_true, y_pred):
        y_true = to_one_hot(y_true, y_pred)
        return self.compute_per_sample(y_true, ops.cast(y_pred, "float32"))

    config_keys = ("from_logits",)
    # The classes are read from the channel axis: spatial_dims is not an argument of these losses.
    config_drop = ("spatial_dims",)

    @classmethod
    def label_channels_needed(cls, kwargs) -> LabelChannelNeed:
        """Every label channel of a sample: the last axis holds the classes (:mod:`tfreg.loss_inputs`)."""
        return LabelChannelNeed()


def _weights_need(weights, name: str) -> LabelChannelNeed:
    """Every label channel, exactly one per entry of a list of class ``weights`` (any count otherwise)."""
    if isinstance(weights, (list, tuple)) and weights:
        return LabelChannelNeed(count=len(weights), reason=f"{name} has {len(weights)} class weights")
    return LabelChannelNeed()


def _check_alpha(alpha):
    """None, a number in [0, 1], or a non-empty list of numbers >= 0 (one per class)."""
    if alpha is None:
        return None
    if isinstance(alpha, (list, tuple, np.ndarray)):
        values = [check_number(a, "alpha") for a in list(alpha)]
        if not values:
            raise ValueError("alpha must be None, a number in [0, 1] or a non-empty list of class weights, got []")
        return values
    return check_number(alpha, "alpha", 0.0, 1.0)


@REGISTRY.register_loss(name="focal")
class FocalLoss(ImageLoss):
    """Focal loss (Lin et al. 2017; WSSAMNet's segmentation loss, gamma = 2), binary or multi-class.

    ``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)``, averaged over voxels (and channels in the binary case):

    - binary (``multi_class=False``): every channel is an independent foreground probability ``p`` with
      target ``t`` in [0, 1]; ``FL = -[a t (1 - p)^gamma log p + (1 - a)(1 - t) p^gamma log(1 - p)]``, which
      is ``-alpha_t (1 - p_t)^gamma log p_t`` for ``t`` in {0, 1}. ``alpha=None`` means no class weighting
      (both factors 1); a number ``a`` weighs the foreground by ``a`` and the background by ``1 - a``
      (Lin et al.'s 0.25).
    - multi-class (``multi_class=True``): ``y_pred`` ``(B, *S, C)`` holds class probabilities (softmax),
      ``y_true`` one-hot or integer labels (see the module docstring);
      ``FL = -sum_c alpha_c t_c (1 - p_c)^gamma log p_c`` with ``alpha`` None (1), a number (same for all
      classes) or a list of ``C`` class weights.

    ``gamma = 0`` and ``alpha = None`` give the cross-entropy. Probabilities are clipped to
    ``[eps, 1 - eps]`` so the logarithms stay finite.

    Args:
        gamma: focusing parameter >= 0 (default 2).
        alpha: see above.
        multi_class: multi-class (softmax) instead of per-channel binary (sigmoid) targets.
        from_logits: ``y_pred`` are logits (sigmoid, or softmax over the last axis when ``multi_class``).
        eps: clipping of the probabilities, in (0, 0.5).
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss` (binary case).

    ``call`` returns ``(B,)`` (dimensionless, nats).
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Union[None, float, Sequence[float]] = None,
        multi_class: bool = False,
        from_logits: bool = False,
        eps: float = 1e-7,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.gamma = check_number(gamma, "gamma")
        self.alpha = _check_alpha(alpha)
        self.multi_class = check_bool(multi_class, "multi_class")
        self.from_logits = check_bool(from_logits, "from_logits")
        if not self.multi_class and isinstance(self.alpha, list):
            raise ValueError("alpha must be None or a number in [0, 1] when multi_class is False, got a list")
        self.eps = check_number(eps, "eps", 0.0, 0.5)
        if self.eps == 0 or self.eps == 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")

    def call(self, y_true, y_pred):
        """Focal loss per sample, ``(B,)``."""
        if self.multi_class:
            y_true = to_one_hot(y_true, y_pred)
            y_pred = ops.cast(y_pred, "float32")
            p = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
            p = ops.clip(p, self.eps, 1.0 - self.eps)
            weights = 1.0
            if isinstance(self.alpha, list):
                if len(self.alpha) != y_pred.shape[-1]:
                    raise ValueError(
                        f"alpha has {len(self.alpha)} class weights but y_pred has {y_pred.shape[-1]} classes"
                    )
                weights = ops.convert_to_tensor(np.asarray(self.alpha, np.float32))
            elif self.alpha is not None:
                weights = self.alpha
            fl = -ops.sum(weights * y_true * ops.power(1.0 - p, self.gamma) * ops.log(p), axis=-1)
            return mean_per_sample(fl)
        y_true, y_pred = self.prepare(y_true, y_pred)
        p = ops.sigmoid(y_pred) if self.from_logits else y_pred
        p = ops.clip(p, self.eps, 1.0 - self.eps)
        a_fg, a_bg = (1.0, 1.0) if self.alpha is None else (self.alpha, 1.0 - self.alpha)
        fg = a_fg * y_true * ops.power(1.0 - p, self.gamma) * ops.log(p)
        bg = a_bg * (1.0 - y_true) * ops.power(p, self.gamma) * ops.log(1.0 - p)
        return -mean_per_sample(fg + bg)

    config_keys = ("gamma", "alpha", "multi_class", "from_logits", "eps")

    @classmethod
    def label_channels_needed(cls, kwargs):
        """Multi-class: every label channel, one per ``alpha`` entry when it is a list; binary: any labels."""
        if kwargs.get("multi_class") is not True:
            return None
        return _weights_need(kwargs.get("alpha"), "alpha")


@REGISTRY.register_loss(name="multiclass-dice")
class MultiClassDiceLoss(_ClassLoss):
    """Negated mean per-class soft Dice, ``(B,)`` (registered as ``multiclass-dice``).

    ``Dice_c = (2 sum_x t_c p_c + smooth_nr) / (sum_x t_c + sum_x p_c + smooth_dr)`` per sample and class
    ``c``, then ``-mean_c Dice_c`` over the classes kept (all, or ``1 .. C-1`` with
    ``include_background=False``). A class absent from both inputs scores ``smooth_nr / smooth_dr`` (1).

    Args:
        include_background: keep class (channel) 0.
        smooth_nr, smooth_dr: >= 0.
        from_logits: softmax ``y_pred`` over the last axis first.
        name, reduction, dtype: see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        include_background: bool = True,
        smooth_nr: float = EPS,
        smooth_dr: float = EPS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.include_background = check_bool(include_background, "include_background")
        self.smooth_nr = check_number(smooth_nr, "smooth_nr")
        self.smooth_dr = check_number(smooth_dr, "smooth_dr")

    def compute_per_sample(self, y_true, y_pred):
        p = self.probabilities(y_pred)
        if not self.include_background:
            if p.shape[-1] < 2:
                raise ValueError("include_background=False needs at least 2 classes")
            y_true, p = y_true[..., 1:], p[..., 1:]
        spatial = tuple(range(1, len(p.shape) - 1))
        inter = ops.sum(y_true * p, axis=spatial)
        total = ops.sum(y_true, axis=spatial) + ops.sum(p, axis=spatial)
        dice = (2.0 * inter + self.smooth_nr) / (total + self.smooth_dr)
        return -ops.mean(dice, axis=-1)

    config_keys = ("include_background", "smooth_nr", "smooth_dr")

    @classmethod
    def label_channels_needed(cls, kwargs) -> LabelChannelNeed:
        """Every label channel; at least 2 without the background class (channel 0)."""
        if kwargs.get("include_background") is False:
            return LabelChannelNeed(minimum=2, reason="include_background: false leaves out channel 0")
        return LabelChannelNeed()


@REGISTRY.register_loss(name="multiclass-cross-entropy")
class MultiClassCrossEntropy(_ClassLoss):
    """Categorical cross-entropy, ``-mean_x sum_c w_c t_c log(p_c + smooth)``, ``(B,)`` nats.

    With ``from_logits=True`` the log-probabilities are ``log_softmax(y_pred)`` (no ``smooth``).

    Args:
        class_weights: None (all 1) or a list of ``C`` weights >= 0.
        smooth: > 0 keeps ``log`` finite at ``p = 0``.
        from_logits: ``y_pred`` are logits.
        name, reduction, dtype: see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        class_weights: Optional[Sequence[float]] = None,
        smooth: float = EPS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if class_weights is not None:
            if not isinstance(class_weights, (list, tuple, np.ndarray)) or len(class_weights) == 0:
                raise ValueError(
                    f"class_weights must be None or a non-empty list of numbers >= 0, got {class_weights!r}"
                )
            class_weights = [check_number(w, "class_weights") for w in class_weights]
        self.class_weights = class_weights
        self.smooth = check_number(smooth, "smooth")
        if self.smooth == 0:
            raise ValueError("smooth must be > 0 (it keeps log(p + smooth) finite), got 0")

    def log_probabilities(self, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if self.from_logits:
            return ops.log_softmax(y_pred, axis=-1)
        return ops.log(y_pred + self.smooth)

    def compute_per_sample(self, y_true, y_pred):
        terms = y_true * self.log_probabilities(y_pred)
        if self.class_weights is not None:
            if len(self.class_weights) != y_pred.shape[-1]:
                raise ValueError(
                    f"class_weights has {len(self.class_weights)} entries but y_pred has {y_pred.shape[-1]} classes"
                )
            terms = terms * ops.convert_to_tensor(np.asarray(self.class_weights, np.float32))
        return -mean_per_sample(ops.sum(terms, axis=-1))

    config_keys = ("class_weights", "smooth")

    @classmethod
    def label_channels_needed(cls, kwargs) -> LabelChannelNeed:
        """Every label channel, one per ``class_weights`` entry when given."""
        return _weights_need(kwargs.get("class_weights"), "class_weights")


def contour_distance(y_true, y_pred, stencil: str = "cross", boundary: str = "replicate", normalize: bool = False):
    """He, He and Cao 2022's contour distance ``ct = || Lap(y_pred) - Lap(y_true) ||_2`` per sample.

    Args:
        y_true, y_pred: float ``(B, *S, C)`` masks or probabilities (each channel filtered separately).
        stencil, boundary: of the discrete Laplacian, see :func:`tfreg.ops.filters.laplacian`.
        normalize: divide by ``sqrt(number of elements per sample)`` (a root-mean-square), so the value
            no longer grows with the image size.

    Returns:
        ``(B,)``: the Euclidean norm over every voxel and channel.
    """
    diff = laplacian(y_pred, stencil=stencil, boundary=boundary) - laplacian(y_true, stencil=stencil, boundary=boundary)
    squared = sum_per_sample(ops.square(diff))
    if normalize:
        count = 1
        for s in diff.shape[1:]:
            count *= s
        squared = squared / float(count)
    # sqrt has an infinite derivative at 0 (identical inputs): a tiny floor keeps gradients finite.
    return ops.sqrt(ops.maximum(squared, 1e-12))


def _check_contour_args(stencil, boundary, normalize):
    check_choice(stencil, "stencil", STENCILS)
    check_choice(boundary, "boundary", BOUNDARIES)
    return check_bool(normalize, "normalize")


@REGISTRY.register_loss(name="contour")
class ContourLoss(ImageLoss):
    """Contour loss of He, He and Cao 2022: ``ct(t, p) = || Lap(p) - Lap(t) ||_2`` per sample.

    ``Lap`` is the discrete Laplacian edge operator (:func:`tfreg.ops.filters.laplacian`; ``stencil`` cross
    = 5/7-point, full = 8/26-neighbour), applied per channel; the norm runs over every voxel and channel.
    It is the plain Euclidean norm (grows like the square root of the contour length), as in the paper;
    ``normalize=True`` divides it by ``sqrt(N)`` (``N`` voxels x channels) to make it size independent.
    Inputs ``(B, *S)`` or ``(B, *S, C)`` binary masks or probabilities in [0, 1].

    Args:
        stencil: ``"cross"`` (default) or ``"full"``.
        boundary: ``"replicate"`` (default) or ``"zero"``.
        normalize: see above.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        stencil: str = "cross",
        boundary: str = "replicate",
        normalize: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.normalize = _check_contour_args(stencil, boundary, normalize)
        self.stencil = stencil
        self.boundary = boundary

    def compute_per_sample(self, y_true, y_pred):
        return contour_distance(y_true, y_pred, self.stencil, self.boundary, self.normalize)

    config_keys = ("stencil", "boundary", "normalize")


@REGISTRY.register_loss(name="contour-ce")
class ContourCrossEntropy(ImageLoss):
    """He, He and Cao 2022's segmentation loss ``CE(t, p) + weight * ct(t, p)``, weight 1.75 (2.0 for its auto-encoder).

    - ``multi_class=False`` (default): ``CE = -mean(t log(p + s) + (1 - t) log(1 - p + s))``, the binary
      cross-entropy with both terms, over every voxel and channel; inputs as :class:`ContourLoss`.
    - ``multi_class=True``: ``CE`` is :class:`MultiClassCrossEntropy` and ``ct`` is computed on the one-hot
      ``y_true`` against ``y_pred`` ``(B, *S, C)`` (integer label maps are accepted, see the module
      docstring): He, He and Cao's ``ce(onehot(I), onehot(I'))``.

    Args:
        weight: ``lambda`` >= 0 (default 1.75).
        multi_class: see above.
        stencil, boundary, normalize: of the contour term, see :class:`ContourLoss`.
        smooth: > 0 inside the logarithms.
        contour_weight: ``lambda`` under the name a config uses: in ``train.loss`` an entry's ``weight`` is the
            weight of the whole loss in the total, so YAML sets ``lambda`` with ``contour_weight`` (e.g. seed
            002's auto-encoder: ``{name: contour-ce, multi_class: true, contour_weight: 2.0, weight: 1.0}``).
            When given it replaces ``weight``.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        weight: float = 1.75,
        multi_class: bool = False,
        stencil: str = "cross",
        boundary: str = "replicate",
        normalize: bool = False,
        smooth: float = EPS,
        contour_weight: Optional[float] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if contour_weight is not None:
            weight = check_number(contour_weight, "contour_weight")
        self.weight = check_number(weight, "weight")
        self.multi_class = check_bool(multi_class, "multi_class")
        self.normalize = _check_contour_args(stencil, boundary, normalize)
        self.stencil = stencil
        self.boundary = boundary
        self.smooth = check_number(smooth, "smooth")
        if self.smooth == 0:
            raise ValueError("smooth must be > 0 (it keeps the logarithms finite), got 0")

    def call(self, y_true, y_pred):
        """``CE + weight * ct`` per sample, ``(B,)``."""
        if self.multi_class:
            y_true = to_one_hot(y_true, y_pred)
            y_pred = ops.cast(y_pred, "float32")
            ce = -mean_per_sample(ops.sum(y_true * ops.log(y_pred + self.smooth), axis=-1))
        else:
            y_true, y_pred = self.prepare(y_true, y_pred)
            ce = -mean_per_sample(
                y_true * ops.log(y_pred + self.smooth) + (1.0 - y_true) * ops.log(1.0 - y_pred + self.smooth)
            )
        return ce + self.weight * contour_distance(y_true, y_pred, self.stencil, self.boundary, self.normalize)

    config_keys = ("weight", "multi_class", "stencil", "boundary", "normalize", "smooth")

    @classmethod
    def label_channels_needed(cls, kwargs):
        """Multi-class: every label channel (the classes); binary: any labels."""
        return LabelChannelNeed() if kwargs.get("multi_class") is True else None


def _batch_shape(shape) -> str:
    """``(batch, 16, 16, 1)`` for messages; None sizes read ``any``."""
    return "(" + ", ".join(["batch"] + ["any" if s is None else str(s) for s in shape]) + ")"


@REGISTRY.register_loss(name="embedding")
class EmbeddingLoss(ImageLoss):
    """Distance between encodings of two label maps, ``||enc(p) - enc(t)||^2`` (He, He and Cao's ``L_ae``).

    ``enc`` is any Keras model or layer mapping ``(B, *S, C)`` to ``(B, ...)`` features (He, He and Cao 2022: the
    encoder of a denoising auto-encoder of label maps, trained beforehand). It is frozen
    (``trainable = False``, called with ``training=False``, so batch-norm statistics stay fixed), but the
    loss is differentiable with respect to its inputs, so gradients reach the registration network.

    ``value = sum over features of (enc(y_pred) - enc(y_true))^2`` per sample (squared Euclidean distance,
    in squared feature units); ``normalize=True`` takes the mean over features instead.

    The ``label_autoencoder`` model's ``save/encoder.keras`` is such an encoder (input: foreground label
    channels ``(B, *S, C)``). :meth:`check_input_shape` refuses labels whose spatial shape or channel count
    does not fit the encoder's input; the registration models call it when they build their losses.

    Args:
        encoder: a Keras model/layer, or the path of a saved ``.keras`` model (loaded without compiling).
        normalize: mean instead of sum over the features.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`; inputs are laid out
            as ``(B, *S, C)`` (a missing channel axis is added) before the encoder sees them.
    """

    def __init__(
        self,
        encoder,
        normalize: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder_path = None
        if isinstance(encoder, (str, os.PathLike)):
            if not os.path.isfile(encoder):
                raise ValueError(f"encoder: no saved Keras model at {os.fspath(encoder)!r}")
            self.encoder_path = os.fspath(encoder)
            encoder = keras.saving.load_model(self.encoder_path, compile=False)
        if not callable(encoder):
            raise ValueError(f"encoder must be a Keras model/layer or the path of a .keras file, got {encoder!r}")
        if isinstance(encoder, keras.layers.Layer):
            encoder.trainable = False
        self.encoder = encoder
        self.normalize = check_bool(normalize, "normalize")

    def encoder_input_shape(self) -> Optional[tuple]:
        """The encoder's input shape without the batch axis, ``(*S, C)`` (None entries: any size), or None
        when the encoder does not declare one (a layer, or a subclassed model not yet called)."""
        try:
            inputs = self.encoder.inputs
        except (AttributeError, ValueError):
            return None
        if not inputs or len(inputs) != 1:
            return None
        return tuple(inputs[0].shape[1:])

    def check_input_shape(self, shape: Sequence[int], ndim: Optional[int] = None) -> None:
        """Refuse label maps that the encoder cannot take, before any training step.

        Args:
            shape: the labels' shape without the batch axis, ``(*S)`` or ``(*S, C)`` (the tensor this loss is
                wired to; a model calls this when it builds its losses).
            ndim: the number of spatial axes, when the caller knows it; otherwise read from the rank as in
                :func:`~tfreg.losses.base.to_channels_last`.

        Raises:
            ValueError: naming the encoder's file, its expected input ``(*S, C)`` and the labels' shape, when the
                spatial shape or the channel count (the label classes it was trained on) differ.
        """
        expected = self.encoder_input_shape()
        if expected is None:
            return
        shape = tuple(int(s) for s in shape)
        if ndim is None:
            ndim = self.spatial_dims
        if ndim is None:
            ndim = {2: 2, 3: 3, 4: 3}.get(len(shape))
        laid_out = shape + (1,) if len(shape) == ndim else shape
        source = f"encoder {self.encoder_path!r}" if self.encoder_path else "the encoder model"

        def agree(a, b):
            return len(a) == len(b) and all(e is None or e == v for e, v in zip(a, b))

        spatial_ok = agree(expected[:-1], laid_out[:-1])
        if not spatial_ok or not agree(expected[-1:], laid_out[-1:]):
            which = "channel count (label classes)" if spatial_ok else "spatial shape"
            raise ValueError(
                f"embedding: {source} expects label maps of shape {_batch_shape(expected)} (spatial size, "
                f"foreground channels), but the labels it is called on have shape {_batch_shape(shape)}, read as "
                f"{_batch_shape(laid_out)}; the {which} differs. Use an auto-encoder trained on labels of this "
                "shape (tfreg_train with train.method label_autoencoder on this data writes save/encoder.keras)"
            )

    def encode(self, x):
        if isinstance(self.encoder, keras.layers.Layer):
            return self.encoder(x, training=False)
        return self.encoder(x)

    def compute_per_sample(self, y_true, y_pred):
        diff = ops.cast(self.encode(y_pred), "float32") - ops.cast(self.encode(y_true), "float32")
        squared = ops.square(diff)
        return mean_per_sample(squared) if self.normalize else sum_per_sample(squared)

    config_keys = ("normalize",)

    def get_config(self) -> dict:
        config = super().get_config()
        config["encoder"] = self.encoder_path
        return config


__all__ = [
    "to_one_hot",
    "contour_distance",
    "FocalLoss",
    "MultiClassDiceLoss",
    "MultiClassCrossEntropy",
    "ContourLoss",
    "ContourCrossEntropy",
    "EmbeddingLoss",
]
