"""Attention-guided registration with multi-scale field fusion (``train.method: dfsa``), 2-D and 3-D.

He, He and Cao 2022, "Deformable image registration with attention-guided fusion of multi-scale deformation
fields" (chest X-rays):

1. a separately trained U-Net segmenter predicts a binary mask of each image (the lungs), ``W_m`` and ``W_f``;
2. hard attention: ``I_m^c = I_m W_m`` and ``I_f^c = I_f W_f``;
3. the dense registration network (the ``dfsa_unet`` backbone: K branches at halving resolutions whose
   fields are fused coarse to fine by DFSA blocks) maps ``concat[I_m^c, I_f^c]`` to the field ``phi``;
4. ``phi`` warps the ORIGINAL moving image and labels;
5. the training loss is ``-(NCC + SSIM)(I_f, phi(I_m)) + CE(s_f, phi(s_m)) + 0.1 AE + 3.5 TV(phi)``, where
   ``AE = ||enc(phi(s_m)) - enc(s_f)||^2`` uses the frozen encoder of a denoising auto-encoder of label maps
   (the ``label_autoencoder`` model, trained beforehand; the ``embedding`` loss).

This is the segmentation-guided model of WSSAMNet(++) (:class:`~tfreg.models.wssamnet.WSSAMNetModel`, same
keys, outputs and ``tfreg_predict`` masks) with the paper's defaults: one segmenter shared by both images
(one modality), frozen (``trainable: false``; its weights come from ``train.init_from``, a ``segmentation``
run with ``contour-ce``), and ``attention: {name: masking, binary: true}``. Any key can still be set. A
typical ``train`` section (``config/dfsa_jsrt.yaml``)::

    method: dfsa
    backbone: {name: dfsa_unet, num_branches: 4}
    segmenter:
      backbone: {name: unet_segmenter, channels: [16, 32, 64, 128, 256]}
      head: {num_classes: 1, activation: sigmoid}
    init_from: {path: logs/dfsa_segmenter_jsrt/save/ckpt-N, parts: {segmenter/backbone: backbone,
                segmenter/head: head}}
    loss:
      image: [{name: ncc, weight: 1.0}, {name: ssim, weight: 1.0, padding: same}]
      label: [{name: cross-entropy, weight: 1.0},
              {name: embedding, weight: 0.1, encoder: logs/dfsa_label_autoencoder_jsrt/save/encoder.keras}]
      regularization: {name: tv, weight: 3.5}

The paper's "No attention" ablation is ``attention: {name: none}`` (the segmenter is then unused).
"""

from typing import Any, Dict

from tfreg.models.wssamnet import WSSAMNetModel
from tfreg.registry import REGISTRY


@REGISTRY.register_model(name="dfsa")
class DFSAModel(WSSAMNetModel):
    """He, He and Cao's hard-attention registration; see the module docstring. Arguments, call and outputs as
    :class:`~tfreg.models.wssamnet.WSSAMNetModel`."""

    supports_control_points = False  # its losses read the backbone's per-branch fields, not the head's output

    segmenter_defaults: Dict[str, Any] = {"shared": True, "trainable": False}
    default_attention: Dict[str, Any] = {"name": "masking", "binary": True}

    def __init__(self, *args, name: str = "DFSAModel", **kwargs):
        super().__init__(*args, name=name, **kwargs)


__all__ = ["DFSAModel"]
