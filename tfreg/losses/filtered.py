"""Similarity in a filtered space: a fixed filter applied to both images, then any registered loss.

Registered: ``filtered`` -> :class:`FilteredLoss`. WSSAMNet computes LNCC and MI on the
Laplacian of Gaussian of both images; in YAML each is one entry::

    image:
      - {name: filtered, filter: log, sigma: 1.0, loss: {name: lncc}}
      - {name: filtered, filter: log, sigma: 1.0, loss: {name: mi, intensity_range: minmax}}

The filtered images are no longer in [0, 1] (a LoG is signed), so an inner MI needs
``intensity_range: minmax`` (or explicit bounds); MI's default clipping would flatten them.
"""

from typing import Any, Dict, Optional

from keras import ops

from tfreg.checks import BOUNDARIES, check_choice, check_number
from tfreg.losses.base import ImageLoss
from tfreg.ops.filters import STENCILS, gaussian_smooth, laplacian, laplacian_of_gaussian
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
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`; ``spatial_dims``
            is passed on to an inner loss built from a config.
    """

    def __init__(
        self,
        loss: Any = None,
        filter: str = "log",
        sigma: Any = 1.0,
        stencil: str = "cross",
        boundary: str = "replicate",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_choice(filter, "filter", FILTERS)
        check_choice(stencil, "stencil", STENCILS)
        check_choice(boundary, "boundary", BOUNDARIES)
        sigmas = list(sigma) if isinstance(sigma, (list, tuple)) else [sigma]
        if filter in ("log", "gaussian"):
            for s in sigmas:
                check_number(s, "sigma", minimum=1e-6)
        if isinstance(loss, dict):
            self.loss_config: Optional[Dict] = dict(loss)
            defaults = {"reduction": None}
            if self.spatial_dims is not None:
                defaults["spatial_dims"] = self.spatial_dims
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

    config_keys = ("filter", "sigma", "stencil", "boundary")

    def get_config(self) -> dict:
        config = super().get_config()
        config["loss"] = self.loss_config
        return config


__all__ = ["FILTERS", "FilteredLoss"]
