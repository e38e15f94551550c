"""Conditional segmentation model (DeepReg's ``conditional``): predicts the fixed label directly."""

from keras import ops

from tfreg.models.base import RegistrationModel, _with_channel
from tfreg.ops.resize import resize
from tfreg.registry import REGISTRY


@REGISTRY.register_model(name="conditional")
class ConditionalModel(RegistrationModel):
    """Predicts ``pred_fixed_label (B, *f)`` in [0, 1] from ``concat[moving, fixed, moving_label]``.

    Arguments as :class:`~tfreg.models.base.RegistrationModel`; ``labeled`` must be True (ValueError
    otherwise, and a config error when ``dataset.train.labeled`` is false). Backbone defaults:
    ``out_channels = 1``, ``"glorot_uniform"``, ``"sigmoid"``. Only the label losses apply; image and
    regularization losses in the config are skipped with a warning, as DeepReg skipped them.
    """

    loss_inputs = {"label": ("fixed_label", "pred_fixed_label")}
    ignored_loss_categories = ("image", "regularization")
    backbone_defaults = {"out_channels": 1, "out_kernel_initializer": "glorot_uniform", "out_activation": "sigmoid"}

    def __init__(self, *args, name: str = "ConditionalModel", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    @classmethod
    def output_names(cls, labeled):
        return ("pred_fixed_label",)

    @classmethod
    def validate_train_config(cls, checker, train, labeled, method):
        super().validate_train_config(checker, train, labeled, method)
        if labeled is False:
            checker.error(
                ("train", "method"),
                f"{method!r} predicts the fixed label and needs labeled data, but dataset.train.labeled is false",
            )

    def _check_labels(self):
        if not self.labeled:
            raise ValueError("labeled must be True for the conditional model (it predicts the fixed label)")

    def field_names(self):
        return []

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        if "moving_label" not in inputs:
            raise ValueError("the conditional model needs inputs['moving_label']")
        x = self.backbone_input(inputs)
        label = resize(_with_channel(inputs["moving_label"]), self.fixed_image_size)
        out = self.backbone(ops.concatenate([x, label], axis=-1), training=training)
        return {"pred_fixed_label": out[..., 0]}


__all__ = ["ConditionalModel"]
