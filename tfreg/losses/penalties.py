"""Further DDF regularisers: total variation, forward-difference gradient, folding, inverse consistency.

Registered (``loss_class``), all Keras layers on DDFs ``(B, *S, ndim)`` in voxels returning ``(B,)``:

=========================  ====================================  =================================
name                       class                                 call
=========================  ====================================  =================================
``tv``                     :class:`TotalVariation`               ``loss(ddf)``
``gradient-forward``       :class:`ForwardGradientNorm`          ``loss(ddf)``
``folding``                :class:`FoldingPenalty`               ``loss(ddf)``
``inverse-consistency``    :class:`InverseConsistency`           ``loss(ddf_forward, ddf_backward)``
=========================  ====================================  =================================

Forward differences ``D_a u[i] = u[i + e_a] - u[i]`` are taken on the common grid of ``S - 1`` voxels per
axis (``forward_difference_cropped``), so every voxel of the map has all ``ndim`` derivatives.
"""

from keras import ops

from tfreg.checks import check_bool, check_choice, check_number
from tfreg.loss_inputs import LossInput
from tfreg.losses.deformation import DeformationLoss
from tfreg.ops.differences import forward_difference_cropped
from tfreg.ops.inverse import compose_ddf
from tfreg.ops.jacobian import MODES as JACOBIAN_MODES
from tfreg.ops.jacobian import jacobian_determinant
from tfreg.registry import REGISTRY

#: the displacement units :class:`TotalVariation` differences: voxels, or a spatial transformer's [-1, 1]
TV_UNITS = ("voxel", "normalized")


@REGISTRY.register_loss(name="tv")
class TotalVariation(DeformationLoss):
    """Total variation of a DDF with forward differences (He, He and Cao 2022's ``L_df``), 2-D and 3-D.

    Anisotropic (default)::

        TV = mean over voxels x and components c of  sum_a |D_a u_c(x)|

    Isotropic (``isotropic=True``)::

        TV = mean over voxels x and components c of  sqrt(sum_a (D_a u_c(x))^2 + eps)

    with ``D_a`` the forward difference along spatial axis ``a`` (map of ``S - 1`` voxels per axis); units:
    voxels per voxel. For ``u = A x`` the anisotropic value is ``sum |A| / ndim``. ``eps`` keeps the square
    root differentiable at a zero gradient.

    ``units="normalized"`` first expresses component ``c`` in the ``[-1, 1]`` coordinates of a spatial
    transformer (PyTorch's ``grid_sample``, AC-RegNet): ``u_c * 2 / (S_c - 1)``. He, He and Cao 2022 weigh TV
    by 3.5 in that convention (their code is AC-RegNet's); in voxels the same weight is ``(S - 1) / 2`` times
    stronger (32 at 64 pixels), and, TV being an L1 penalty, holds a zero-initialised field at exactly zero.

    Args:
        isotropic: Euclidean norm of the gradient per component instead of the sum of absolute values.
        eps: > 0, only used when ``isotropic``.
        units: ``"voxel"`` (default) or ``"normalized"``, see above.
        **kwargs: reduction, name, dtype, see :class:`~tfreg.losses.deformation.DeformationLoss`.
    """

    min_size = 2

    def __init__(
        self,
        isotropic: bool = False,
        eps: float = 1e-8,
        units: str = "voxel",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.isotropic = check_bool(isotropic, "isotropic")
        self.eps = check_number(eps, "eps")
        self.units = check_choice(units, "units", TV_UNITS)

    def penalty(self, ddf):
        """``(B, *(S - 1), ndim)`` map of the per-component total variation density."""
        ndim = len(ddf.shape) - 2
        if self.units == "normalized":
            scale = [2.0 / (s - 1) for s in ddf.shape[1:-1]]
            ddf = ddf * ops.convert_to_tensor(scale, dtype=ddf.dtype)
        diffs = [forward_difference_cropped(ddf, a) for a in range(ndim)]
        if self.isotropic:
            return ops.sqrt(sum(ops.square(d) for d in diffs) + self.eps)
        return sum(ops.abs(d) for d in diffs)

    config_keys = ("isotropic", "eps", "units")


@REGISTRY.register_loss(name="gradient-forward")
class ForwardGradientNorm(DeformationLoss):
    """Gradient norm of a DDF with forward differences (WSSAMNet(++)'s smoothness term), 2-D and 3-D.

    ``mean over voxels and components of sum_a (D_a u)^2`` (default) or ``sum_a |D_a u|`` (``l1=True``),
    with ``D_a`` the forward difference (map of ``S - 1`` voxels per axis); DeepReg's ``gradient`` is the
    same with cropped central differences. For ``u = A x`` the value is ``sum(A^2) / ndim`` (``l1``:
    ``sum |A| / ndim``), exactly, like ``gradient``.

    Args:
        l1: absolute values instead of squares (then equal to ``tv``).
        **kwargs: reduction, name, dtype, see :class:`~tfreg.losses.deformation.DeformationLoss`.
    """

    min_size = 2

    def __init__(self, l1: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.l1 = check_bool(l1, "l1")

    def penalty(self, ddf):
        """``(B, *(S - 1), ndim)`` map of ``sum_a |D_a u|^p``."""
        ndim = len(ddf.shape) - 2
        diffs = [forward_difference_cropped(ddf, a) for a in range(ndim)]
        return sum(ops.abs(d) if self.l1 else ops.square(d) for d in diffs)

    config_keys = ("l1",)


FOLDING_PENALTIES = ("relu", "squared", "fraction")


@REGISTRY.register_loss(name="folding")
class FoldingPenalty(DeformationLoss):
    """Penalty on folding (non-positive Jacobian determinant) of ``T(x) = x + u(x)``, 2-D and 3-D.

    With ``d = det J`` per voxel (:func:`tfreg.ops.jacobian.jacobian_determinant`, ``mode`` central or
    forward) and ``m = margin``:

    - ``penalty="relu"`` (default): ``mean relu(m - d)``; with ``m = 0`` the mean of ``relu(-det J)``.
      Continuous, with a kink at ``d = m``; a small ``m > 0`` (e.g. 0.01-0.1) starts pushing before the
      fold actually happens.
    - ``penalty="squared"``: ``mean relu(m - d)^2``, continuously differentiable (smooth gradient near
      the threshold).
    - ``penalty="fraction"``: the fraction of voxels with ``d <= m`` (He, He and Cao, van Ulsen and macJNet
      report it as a count, per cent or per mille); a step function, so it gives no gradient: a metric, not a
      training loss.

    Args:
        penalty: ``"relu"``, ``"squared"`` or ``"fraction"``.
        margin: ``m``, a number in [0, 1] (dimensionless, det J units).
        mode: ``"central"`` (default) or ``"forward"`` differences for ``J`` (see
            :func:`tfreg.ops.jacobian.jacobian`).
        **kwargs: reduction, name, dtype, see :class:`~tfreg.losses.deformation.DeformationLoss`.
    """

    def __init__(
        self,
        penalty: str = "relu",
        margin: float = 0.0,
        mode: str = "central",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_choice(penalty, "penalty", FOLDING_PENALTIES)
        check_choice(mode, "mode", JACOBIAN_MODES)
        self.penalty_type = penalty
        self.margin = check_number(margin, "margin", 0.0, 1.0)
        self.mode = mode
        # forward differences need 2 voxels per axis, central ones 3.
        self.min_size = 2 if mode == "forward" else 3

    def penalty(self, ddf):
        """``(B, *S)`` map of the folding penalty density."""
        below = self.margin - jacobian_determinant(ddf, mode=self.mode)
        if self.penalty_type == "fraction":
            return ops.cast(below >= 0.0, "float32")
        hinge = ops.relu(below)
        return hinge if self.penalty_type == "relu" else ops.square(hinge)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(penalty=self.penalty_type, margin=self.margin, mode=self.mode)
        return config


@REGISTRY.register_loss(name="inverse-consistency")
class InverseConsistency(DeformationLoss):
    """Inverse-consistency error of a forward/backward DDF pair, 2-D and 3-D.

    ``T_f(x) = x + u_f(x)`` and ``T_b(y) = y + u_b(y)`` should be inverse: ``T_b(T_f(x)) = x``, i.e.
    ``u_f(x) + u_b(x + u_f(x)) = 0``. The value is::

        IC_f = mean over voxels x of || u_f(x) + u_b(x + u_f(x)) ||^2        (voxels^2)

    where ``u_b`` is sampled at ``x + u_f(x)`` by linear interpolation with replicate boundary (points
    outside the grid take the nearest edge value). With ``symmetric=True`` (default) the value is
    ``(IC_f + IC_b) / 2``, ``IC_b`` the same with the roles swapped, so both directions are consistent.

    Called as ``loss(ddf_forward, ddf_backward)`` or ``loss([ddf_forward, ddf_backward])``, each
    ``(B, *S, ndim)`` with the same shape (both on the same grid, e.g. fixed = moving grid).

    Args:
        symmetric: also penalise ``u_b(y) + u_f(y + u_b(y))``.
        **kwargs: reduction, name, dtype, see :class:`~tfreg.losses.deformation.DeformationLoss`.

    In a model's config the backward field is the model's ``ddf_backward`` output by default (the DDF and
    DVF models compute it by a second, swapped pass when this loss asks for it; :mod:`tfreg.loss_inputs`).
    """

    min_size = 2
    tensor_inputs = (
        LossInput(
            "ddf_backward", "backward DDF (B, *S, ndim), voxels, on the forward DDF's grid", default="ddf_backward"
        ),
    )

    def __init__(self, symmetric: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.symmetric = check_bool(symmetric, "symmetric")

    @staticmethod
    def one_way(ddf_a, ddf_b):
        """``(B, *S)`` map of ``|| u_a(x) + u_b(x + u_a(x)) ||^2``."""
        return ops.sum(ops.square(compose_ddf(ddf_a, ddf_b, boundary="replicate")), axis=-1)

    def call(self, inputs, ddf_backward=None):
        """``(B,)`` inverse-consistency error; see the class docstring for the inputs."""
        if ddf_backward is None:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
                raise ValueError(
                    f"{type(self).__name__}: call as loss(ddf_forward, ddf_backward) or with a list of the two DDFs"
                )
            inputs, ddf_backward = inputs
        ddf_f, ddf_b = self.check_ddf(inputs), self.check_ddf(ddf_backward)
        if tuple(ddf_f.shape[1:]) != tuple(ddf_b.shape[1:]):
            raise ValueError(
                f"{type(self).__name__}: ddf_forward and ddf_backward must have the same shape, got "
                f"{tuple(ddf_f.shape)} and {tuple(ddf_b.shape)}"
            )
        value = self.one_way(ddf_f, ddf_b)
        if self.symmetric:
            value = 0.5 * (value + self.one_way(ddf_b, ddf_f))
        return self.reduce(value)

    def compute_output_shape(self, input_shape, ddf_backward_shape=None):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        return super().compute_output_shape(input_shape)

    config_keys = ("symmetric",)


__all__ = [
    "TotalVariation",
    "ForwardGradientNorm",
    "FoldingPenalty",
    "InverseConsistency",
    "FOLDING_PENALTIES",
]
