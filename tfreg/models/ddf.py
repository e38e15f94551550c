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
    backbone}``, plus ``"ddf_backward"`` when a configured loss asks for it.

    ``ddf_backward`` (optional output, e.g. for ``inverse-consistency``): a second pass of the same
    backbone with the roles swapped, ``backbone(concat[fixed, moving])``: the field that maps the fixed
    image onto the moving one, ``(B, *m, ndim)``, in fixed voxels. It needs moving and fixed images of one
    shape (ValueError otherwise) and costs a second forward and backward pass of the backbone.
    """

    backbone_defaults = {"out_kernel_initializer": "zeros", "out_activation": None}
    supports_control_points = True
    optional_outputs = ("ddf_backward",)

    def _check_loss_wiring(self):
        requested = super()._check_loss_wiring()
        if "ddf_backward" in requested and self.moving_image_size != self.fixed_image_size:
            raise ValueError(
                f"ddf_backward (asked for by a loss) needs moving and fixed images of one shape, got "
                f"{self.moving_image_size} and {self.fixed_image_size}"
            )
        return requested

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
        if "ddf_backward" in self.requested_outputs:
            swapped = dict(inputs, moving_image=inputs["fixed_image"], fixed_image=inputs["moving_image"])
            outputs["ddf_backward"], _ = self.predict_field(swapped, training=training)
        return outputs


__all__ = ["DDFModel"]
