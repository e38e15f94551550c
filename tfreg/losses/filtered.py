"""Similarity in a filtered space: a fixed filter applied to both images, then any registered loss.

Registered: ``filtered`` -> :class:`FilteredLoss`. WSSAMNet (seed 001) computes LNCC and MI on the
Laplacian of Gaussian of both images; in YAML each is one entry::

    image:
      - {name: filtered, filter: log, sigma: 1.0, loss: {name: lncc}}
      - {name: filtered, filter: log, sigma: 1.0, loss: {name: mi, intensity_range: minmax}}

The filtered images are no longer in [0, 1] (a LoG is signed), so an inner MI needs
``intensity_range: minmax`` (or explicit bounds); MI's default clipping would flatten them.
"""

from typing import Any, Dict, Optional

from keras import ops

from tfreg.losses.base import ImageLoss, check_number
from tfreg.ops.filters import BOUNDARIES, STENCILS, gaussian_smooth, laplacian, laplacian_of_gaussian
from tfreg.registry import REGISTRY

FILTERS = ("log", "laplacian", "gaussian", "none")


@REGISTRY.register_loss(name="filtered")
class FilteredLoss(ImageLoss):
    """``inner(F(y_true), F(y_pred))`` with a fixed filter ``F`` applied to each channel.

    ``F`` (distances in voxels, see :mod:`tfreg.ops.filters`):

    - ``"log"``: Laplacian of Gaussian, ``L(G_sigma * x)``;
    - ``"laplacian"``: discrete Laplacian ``L x`` (``sigma`` unused);
    - ``"gaussian"``: Gaussian smoothing ``G_sigma * x``;
    - ``"none"``: identity (for ablations).

    The value has the sign of the inner loss (registered similarities are already negated).

    Args:
        loss: the inner loss, a config dict ``{name: <registered loss_class>, **kwargs}`` built through
            REGISTRY (its ``reduction`` is ignored: this wrapper reduces), or a Keras loss object with a
            per-sample ``call``.
        filter: ``"log"`` (default), ``"laplacian"``, ``"gaussian"`` or ``"none"``.
        sigma: Gaussian sigma in voxels (scalar or one per spatial axis), > 0 for log/gaussian.
        stencil: Laplacian stencil, ``"cross"`` or ``"full"``.
        boundary: ``"replicate"`` (default) or ``"zero"``.
        spatial_dims, name, reduction, dtype: see :class:`~tfreg.losses.base.ImageLoss`; ``spatial_dims``
            is passed on to an inner loss built from a config.
    """

    def __init__(
        self,
        loss: Any = None,
        filter: str = "log",
        sigma: Any = 1.0,
        stencil: str = "cross",
        boundary: str = "replicate",
        spatial_dims: Optional[int] = None,
        name: Optional[str] = None,
        reduction: Optional[str] = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(spatial_dims=spatial_dims, name=name, reduction=reduction, dtype=dtype)
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {list(FILTERS)}, got {filter!r}")
        if stencil not in STENCILS:
            raise ValueError(f"stencil must be one of {list(STENCILS)}, got {stencil!r}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {list(BOUNDARIES)}, got {boundary!r}")
        sigmas = list(sigma) if isinstance(sigma, (list, tuple)) else [sigma]
        if filter in ("log", "gaussian"):
            for s in sigmas:
                check_number(s, "sigma", minimum=1e-6)
        if isinstance(loss, dict):
            self.loss_config: Optional[Dict] = dict(loss)
            defaults = {"reduction": None}
            if spatial_dims is not None:
                defaults["spatial_dims"] = spatial_dims
            self.inner = REGISTRY.build_loss(self.loss_config, defaults)
        elif hasattr(loss, "call"):
            self.loss_config, self.inner = None, loss
        else:
            raise ValueError(
                f"loss must be a config dict {{name: <loss_class name>, ...}} or a Keras loss, got {loss!r}; "
                f"registered names: {REGISTRY.names('loss_class')}"
            )
        self.filter, self.sigma, self.stencil, self.boundary = filter, sigma, stencil, boundary

    def apply_filter(self, x):
        """``F(x)`` for float32 ``(B, *S, C)``."""
        if self.filter == "log":
            return laplacian_of_gaussian(x, self.sigma, stencil=self.stencil, boundary=self.boundary)
        if self.filter == "laplacian":
            return laplacian(x, stencil=self.stencil, boundary=self.boundary)
        if self.filter == "gaussian":
            return gaussian_smooth(x, self.sigma, boundary=self.boundary)
        return x

    def compute_per_sample(self, y_true, y_pred):
        """The inner loss of the filtered images, ``(B,)``."""
        ft, fp = self.apply_filter(y_true), self.apply_filter(y_pred)
        if ft.shape[-1] == 1:
            # Without a channel axis the inner loss reads the rank unambiguously (DeepReg's layout),
            # whatever its spatial_dims.
            ft, fp = ops.squeeze(ft, -1), ops.squeeze(fp, -1)
        return self.inner.call(ft, fp)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            loss=self.loss_config, filter=self.filter, sigma=self.sigma, stencil=self.stencil, boundary=self.boundary
        )
        return config


__all__ = ["FILTERS", "FilteredLoss"]
