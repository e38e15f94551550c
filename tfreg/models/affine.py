"""Affine model: a :class:`~tfreg.models.ddf.DDFModel` with the ``global`` backbone (outputs ``theta``).

DeepReg had no ``affine`` method (affine was ``ddf`` + ``global``); tfreg registers ``affine`` as a
shortcut. The backbone defaults to ``{"name": "global"}``; any other backbone name is a ValueError.
"""

from tfreg.models.ddf import DDFModel
from tfreg.registry import REGISTRY


@REGISTRY.register_model(name="affine")
class AffineModel(DDFModel):
    """DDF model whose backbone is GlobalNet; outputs ``theta (B, ndim + 1, ndim)`` and its ``ddf``."""

    supports_control_points = False  # an affine field is smooth already

    def __init__(self, *args, name: str = "AffineModel", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def _build_backbone(self, cfg):
        if cfg is None:
            raise ValueError(
                "the affine model needs backbone settings, e.g. "
                "{'name': 'global', 'num_channel_initial': 4, 'depth': 2}"
            )
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            cfg.setdefault("name", "global")
            if cfg["name"] != "global":
                raise ValueError(f"backbone name must be 'global' for the affine model, got {cfg['name']!r}")
        return super()._build_backbone(cfg)


__all__ = ["AffineModel"]
