"""DDF model (DeepReg's ``ddf``): the backbone predicts the dense displacement field directly."""

from keras import ops

from tfreg.models.base import RegistrationModel
from tfreg.ops.warp import warp
from tfreg.registry import REGISTRY


@REGISTRY.register_model(name="ddf")
class DDFModel(RegistrationModel):
    """Dense displacement field model; arguments as :class:`~tfreg.models.base.RegistrationModel`.

    Backbone defaults: ``image_size = fixed_image_size``, ``out_channels = ndim``, ``out_kernel_initializer
    = "zeros"``, ``out_activation = None`` (the DDF starts at 0).

    Call: input dict -> ``{"ddf": (B, *f, ndim) moving voxels, "pred_fixed_image": (B, *f),
    "pred_fixed_label": (B, *f) when labels are given, "theta": (B, ndim + 1, ndim) with the global
    backbone}``.
    """

    backbone_defaults = {"out_kernel_initializer": "zeros", "out_activation": None}

    def __init__(self, *args, name: str = "DDFModel", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def predict_field(self, inputs, training=None):
        """``(ddf, extra outputs dict)`` from the backbone."""
        out = self.backbone(self.backbone_input(inputs), training=training)
        if isinstance(out, (tuple, list)):
            return out[0], {"theta": out[1]}
        return out, {}

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        ddf, outputs = self.predict_field(inputs, training=training)
        outputs = dict(outputs)
        outputs["ddf"] = ddf
        outputs["pred_fixed_image"] = warp(ops.cast(inputs["moving_image"], "float32"), ddf)
        if self._has_labels(inputs):
            outputs["pred_fixed_label"] = warp(ops.cast(inputs["moving_label"], "float32"), ddf)
        return outputs


__all__ = ["DDFModel"]
