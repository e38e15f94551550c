"""LapIRN as a registration model (``train.method: lapirn``): losses at the active pyramid level's resolution.

Mok and Chung 2020 ("Large deformation diffeomorphic image registration with Laplacian pyramid networks")
train each level on its own grid: the similarity compares the level's fixed image with the level's warped
moving image, and the smoothness acts on the level's displacement (in voxels of that level). This model
does the same with the ``lapirn`` backbone (:class:`~tfreg.models.backbones.lapirn.LapIRN`): its loss table is

    image:          (level_fixed_image, level_pred_fixed_image)   on the active level's grid S_l
    label:          (fixed_label, pred_fixed_label)               full resolution
    regularization: (level_ddf,)                                  S_l, level voxels

so that a progressive run (``train.trainer: {name: progressive, ...}`` or the
:class:`~tfreg.engine.progressive.ProgressiveTraining` callback) optimises level 1 on the coarse grid, then
level 2, and so on. At the full level (the default, every level active) these tensors are exactly
``fixed_image``, ``pred_fixed_image`` and ``ddf``. The label loss is computed at full resolution with the
active level's field up-sampled (LapIRN itself is unsupervised).

Outputs: DeepReg's ``ddf`` ``(B, *f, ndim)`` (the active level's displacement on the full fixed grid, voxels),
``pred_fixed_image`` ``(B, *f)``, ``pred_fixed_label`` (labels ``(B, *f)`` or ``(B, *f, L)``), and the level
tensors ``level_ddf`` ``(B, *f_l, ndim)`` (level voxels), ``level_fixed_image`` and ``level_pred_fixed_image``
``(B, *f_l)``; ``ddf_backward`` when a loss asks for it (as :class:`~tfreg.models.ddf.DDFModel`).
``tfreg_predict`` writes the DeepReg outputs. With ``diffeomorphic: true`` the outputs are the integrated
displacements; the summed velocities are in the backbone's :meth:`~tfreg.models.backbones.lapirn.LapIRN.pyramid`
(``"dvf"``).
"""

from typing import Optional, Tuple

from keras import ops

from tfreg.models.backbones.lapirn import LapIRN
from tfreg.models.ddf import DDFModel
from tfreg.ops.warp import warp
from tfreg.registry import REGISTRY

#: the outputs on the active level's grid (their shape depends on the training stage)
LEVEL_OUTPUTS = ("level_ddf", "level_fixed_image", "level_pred_fixed_image")


@REGISTRY.register_model(name="lapirn")
class LapIRNModel(DDFModel):
    """LapIRN registration model; arguments as :class:`~tfreg.models.base.RegistrationModel`, and
    ``train.backbone`` must be ``{name: lapirn, ...}`` (DDF defaults: zero last convolutions, so the field
    starts at 0). See the module docstring for the losses' tensors and the outputs.

    Raises:
        ValueError: a backbone other than :class:`~tfreg.models.backbones.lapirn.LapIRN`.
    """

    loss_inputs = {
        "image": ("level_fixed_image", "level_pred_fixed_image"),
        "label": ("fixed_label", "pred_fixed_label"),
        "regularization": ("level_ddf",),
    }

    supports_control_points = False  # the pyramid's levels are fields of their own grids

    def __init__(self, *args, name: str = "LapIRNModel", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    @classmethod
    def output_names(cls, labeled: bool) -> Tuple[str, ...]:
        return super().output_names(labeled) + LEVEL_OUTPUTS

    def tensor_shape(self, name: str) -> Optional[Tuple[int, ...]]:
        """As the base class; for the level tensors, the coarsest level's grid: a progressive run computes its
        image and regularization losses there first, so a loss that cannot run on it (e.g. macMIND's 4-voxel
        reach on a 4-voxel level) is refused before training rather than at the first step."""
        if name in LEVEL_OUTPUTS:
            coarsest = tuple(-(-int(s) // 2 ** (self.backbone.num_levels - 1)) for s in self.fixed_image_size)
            return coarsest + ((self.ndim,) if name == "level_ddf" else ())
        return super().tensor_shape(name)

    @classmethod
    def validate_train_config(cls, checker, train, labeled, method):
        super().validate_train_config(checker, train, labeled, method)
        backbone = train.get("backbone")
        if isinstance(backbone, dict) and "name" in backbone and backbone["name"] != "lapirn":
            checker.error(
                ("train", "backbone", "name"),
                f"method {method!r} needs the lapirn backbone (its losses use the pyramid's levels), "
                f"got {backbone['name']!r}",
            )

    def build_networks(self, config):
        super().build_networks(config)
        if not isinstance(self.backbone, LapIRN):
            raise ValueError(
                f"model {type(self).__name__} needs the lapirn backbone (train.backbone: {{name: lapirn}}), got "
                f"{type(self.backbone).__name__}"
            )

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        levels = self.backbone.pyramid(self.backbone_input(inputs), training=training)
        level = levels[-1]
        ddf = self.backbone.to_full_resolution(level["ddf"])
        outputs = {"ddf": ddf, "pred_fixed_image": warp(ops.cast(inputs["moving_image"], "float32"), ddf)}
        if self._has_labels(inputs):
            outputs["pred_fixed_label"] = warp(ops.cast(inputs["moving_label"], "float32"), ddf)
        if self.backbone.active_level == self.backbone.num_levels:
            # the full level: the DeepReg tensors themselves (the warped ORIGINAL moving image)
            outputs.update(
                level_ddf=ddf,
                level_fixed_image=ops.cast(inputs["fixed_image"], "float32"),
                level_pred_fixed_image=outputs["pred_fixed_image"],
            )
        else:
            outputs.update(
                level_ddf=level["ddf"],
                level_fixed_image=level["fixed"][..., 0],
                level_pred_fixed_image=level["moving"][..., 0],
            )
        if "ddf_backward" in self.requested_outputs:
            swapped = dict(inputs, moving_image=inputs["fixed_image"], fixed_image=inputs["moving_image"])
            outputs["ddf_backward"], _ = self.predict_field(swapped, training=training)
        return outputs


__all__ = ["LapIRNModel", "LEVEL_OUTPUTS"]
