"""DVF model (DeepReg's ``dvf``): the backbone predicts a stationary velocity field, integrated into the DDF."""

from tfreg.models.ddf import DDFModel
from tfreg.ops.integrate import integrate_dvf
from tfreg.registry import REGISTRY


@REGISTRY.register_model(name="dvf")
class DVFModel(DDFModel):
    """Velocity field model: ``ddf = integrate_dvf(dvf)`` (scaling and squaring, 7 steps).

    Arguments as :class:`~tfreg.models.base.RegistrationModel`. Outputs as :class:`DDFModel` plus ``"dvf"``
    ``(B, *f, ndim)`` (voxels per unit time). Regularisation losses act on the DDF, as in DeepReg.
    """

    def __init__(self, *args, name: str = "DVFModel", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    @classmethod
    def output_names(cls, labeled):
        return ("dvf",) + super().output_names(labeled)

    def field_names(self):
        return ["dvf", "ddf"]

    def predict_field(self, inputs, training=None):
        dvf, extra = super().predict_field(inputs, training=training)
        return integrate_dvf(dvf), dict(extra, dvf=dvf)


__all__ = ["DVFModel"]
