"""DeepReg's package layout on tfreg: ``import deepreg.X`` becomes ``import tfreg.compat.deepreg.X``.

========================================  =====================================================
DeepReg                                   here (the tfreg object it is)
========================================  =====================================================
``deepreg.registry``                      :mod:`.registry` (``tfreg.registry``: the same registry)
``deepreg.train.train``                   :func:`.train.train` (``tfreg.engine.train.train``)
``deepreg.predict.predict``               :func:`.predict.predict` (``tfreg.engine.predict.predict``)
``deepreg.warp.warp``                     :func:`.warp.warp` (``tfreg.engine.warp.warp_file``)
``deepreg.constant.EPS``                  :mod:`.constant`
``deepreg.config.parser``                 :mod:`.config.parser` (``tfreg.config``)
``deepreg.loss.{image,label,deform}``     :mod:`.loss` (``tfreg.losses``)
``deepreg.model.layer``                   :mod:`.model.layer` (``tfreg.layers.warping``)
``deepreg.model.layer_util``              :mod:`.model.layer_util` (``tfreg.ops``, DeepReg's argument names)
``deepreg.model.backbone``                :mod:`.model.backbone` (``tfreg.models.backbones``)
========================================  =====================================================

``REGISTRY`` is tfreg's one registry: a component registered through this path is seen by ``tfreg_train``
and by every config, and the other way round.
"""

from tfreg.registry import REGISTRY

__all__ = ["REGISTRY"]
