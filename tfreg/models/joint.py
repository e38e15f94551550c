"""Joint segmentation-registration learning (``train.method: joint``): macJNet's framework.

Zhou et al. 2023, "macJNet: weakly-supervised multimodal image deformable registration using joint learning
framework and multi-sampling cascaded MIND": one registration network and two segmentation networks (one per
modality) learn from each other. The registration network's label term uses ground-truth labels where a pair
has them and the segmenters' predictions otherwise; the segmenters learn from ground truth where it exists
and otherwise from each other through the current field (cross-modal consistency). The framework is generic:
any registered registration backbone (macJNet: ``lapirn`` with attention gates) and segmentation backbone
(macJNet: ``unet_segmenter`` nnU-Net-like with scSE blocks) can be used.

Tensors, for moving ``I_M (B, *m)`` and fixed ``I_F (B, *f)`` images with ground-truth labels ``L_M``, ``L_F``
(``(B, *S)``, one channel per sample, or ``(B, *S, L)`` with ``dataset.sample_label: stack``):

- ``ddf = backbone(concat[resize(I_M -> f), I_F])`` on the fixed grid, moving voxels; the network sees the
  images only (the paper's inference takes images; labels enter through the losses, as in DeepAtlas);
- ``S_M = seg_M(I_M)``, ``S_F = seg_F(I_F)``: probabilities ``(B, *S, K)``, their structure channels matched
  to the label channel of each sample (``moving_segmentation`` / ``fixed_segmentation`` are the full heads);
- ``v`` ``(B,)``: whether the pair's labels are visible to training (``train.joint.labeled_fraction``);
- loss category ``label`` (the registration step's ``E_label``) on ``(registration_fixed_label,
  registration_pred_fixed_label)`` = ``(v ? L_F : P_F, warp(v ? L_M : P_M, ddf))``, ``P`` the segmenters'
  predictions under stop-gradient, thresholded at 0.5 (``pseudo_labels: binary``, default) or soft;
- loss category ``segmentation`` (the segmentation step's ``E_seg``, Eq. 16) on ``(segmentation_target,
  segmentation_pred)``, ``2B`` entries stacked along the batch, fixed half first:
  ``(v ? L_F : warp(S_M, stop_gradient(ddf)), S_F)`` then ``(v ? L_M : 0, v ? S_M : 0)``. A pair with labels
  gets ``Dice(S_F, L_F) + Dice(S_M, L_M)``; a pair without gets the consistency ``Dice(S_F, S_M o phi)`` (its
  gradient reaches both segmenters) and an all-zero second entry, which carries no gradient (with Dice's
  ``smooth_nr: 0`` its value is 0). The category's value is the mean over the ``2B`` entries;
- categories ``image`` (``E_sim`` on ``(fixed_image, pred_fixed_image)``) and ``regularization`` (``E_smo`` on
  ``ddf``), as the DDF model.

``ddf`` does not receive gradients from ``segmentation`` and the segmenters do not receive gradients from
``label``; with the ``alternating`` trainer (the paper's protocol) each phase steps one parameter group
(``registration``: the registration backbone, ``segmentation``: the segmenters) with its own optimizer, and
with one optimizer (``fit``) both groups step at once, each on its own losses.

A soft Dice with numerator smoothing is minimised by two empty masks (1 = eps / eps), which the consistency
term alone would then reach: configure the segmentation Dice with ``smooth_nr: 0`` (the configs do).

``train`` keys, besides ``backbone``, ``loss`` and ``segmenter`` (as the ``wssamnet`` model's, without
``target: roi`` and frozen segmenters)::

    joint:
      labeled_fraction: 0.3     # pairs whose labels training may see (macJNet: 30 %); 0..1
      seed: 0                   # which pairs: a fixed permutation of the training pairs
      pseudo_labels: binary     # binary | soft: the segmenters' predictions in the label term
      moving_modality: MR       # optional: checked against the modality recorded by the segmenters'
      fixed_modality: CT        #   pre-training runs (train.modality of a segmentation run)

The visible pairs are the first ``round(labeled_fraction * N)`` of ``numpy.random.default_rng(seed)
.permutation(N)``, ``N`` the training pairs, keyed by the pair index (``indices[:, 0]``); they are logged at
build. Validation and prediction (``training`` false) see every label.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import yaml
from keras import ops

from tfreg.checks import check_choice, check_int, check_number
from tfreg.label_threshold import binarise
from tfreg.models.base import _with_channel
from tfreg.models.segmentation import matched_prediction, resolve_head
from tfreg.models.segmenter import foreground
from tfreg.models.wssamnet import WSSAMNetModel
from tfreg.ops.resize import resize
from tfreg.ops.warp import warp
from tfreg.registry import REGISTRY

logger = logging.getLogger(__name__)

#: keys of ``train.joint``
JOINT_KEYS = ("labeled_fraction", "seed", "pseudo_labels", "moving_modality", "fixed_modality")
#: how the segmenters' predictions enter the registration's label term
PSEUDO_LABELS = ("binary", "soft")
#: the segmenters' names in the model (checkpoint parts) and the image role each segments
SEGMENTER_ROLES = {"moving_segmenter": "moving", "fixed_segmenter": "fixed", "segmenter": None}


def labeled_pairs(num_pairs: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Which of ``num_pairs`` training pairs keep their labels: ``(num_pairs,)`` bool.

    The first ``round(fraction * num_pairs)`` entries of a seeded permutation (so the count is exact and the
    subsets of one seed are nested as the fraction grows).
    """
    num_pairs = check_int(num_pairs, "num_pairs", minimum=1)
    fraction = check_number(fraction, "labeled_fraction", 0.0, 1.0)
    order = np.random.default_rng(check_int(seed, "seed", minimum=0)).permutation(num_pairs)
    visible = np.zeros(num_pairs, dtype=bool)
    visible[order[: int(round(fraction * num_pairs))]] = True
    return visible


def recorded_modality(ckpt_path: str) -> Optional[str]:
    """``train.modality`` of the run that wrote ``ckpt_path`` (its ``save/config.yaml``), or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(os.path.expanduser(ckpt_path))), "config.yaml")
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None
    train = config.get("train") if isinstance(config, dict) else None
    modality = train.get("modality") if isinstance(train, dict) else None
    return str(modality) if modality is not None else None


@REGISTRY.register_model(name="joint")
class JointModel(WSSAMNetModel):
    """macJNet's joint segmentation-registration model; see the module docstring.

    Args: as :class:`~tfreg.models.base.RegistrationModel`, plus
        num_pairs: training pairs (``tfreg_train`` passes the loader's); needed when ``0 < labeled_fraction < 1``.
        label_count: label channels of the data; fills in and checks ``segmenter.head.num_classes``.

    Call: the input dict (labels required) -> ``ddf``, ``pred_fixed_image``, ``pred_fixed_label`` (the ground
    truth warped, for ``metric/TRE`` and prediction), ``moving_segmentation`` / ``fixed_segmentation`` ``(B, *S,
    K)``, and the loss pairs ``registration_fixed_label`` / ``registration_pred_fixed_label`` and
    ``segmentation_target`` / ``segmentation_pred``.
    """

    loss_inputs = {
        "image": ("fixed_image", "pred_fixed_image"),
        "label": ("registration_fixed_label", "registration_pred_fixed_label"),
        "regularization": ("ddf",),
        "segmentation": ("segmentation_target", "segmentation_pred"),
    }
    config_keys = ("backbone", "loss", "segmenter", "joint")
    supports_control_points = False  # LapIRN's levels are fields of their own grids
    required_config_keys = ("backbone", "loss", "segmenter")
    prediction_images = {"moving_segmentation": "moving", "fixed_segmentation": "fixed"}
    optional_outputs = ()

    def __init__(
        self,
        *args,
        num_pairs: Optional[int] = None,
        label_count: Optional[int] = None,
        name: str = "JointModel",
        **kwargs,
    ):
        # set before the base constructor, which builds the networks
        self.num_pairs = None if num_pairs is None else check_int(num_pairs, "num_pairs", minimum=1)
        self.label_count = None if label_count is None else check_int(label_count, "label_count", minimum=1)
        super().__init__(*args, name=name, **kwargs)

    @classmethod
    def data_arguments(cls, loader) -> Dict[str, Any]:
        """``num_pairs`` (the loader's pairs, or samples) and ``label_count`` (the label files' channels)."""
        args: Dict[str, Any] = {"num_pairs": int(getattr(loader, "num_images", None) or loader.num_samples)}
        count = getattr(loader, "num_labels", None) if getattr(loader, "labeled", False) else None
        if count is not None:
            args["label_count"] = int(count)
        return args

    # ------------------------------------------------------------------ contract
    @classmethod
    def output_names(cls, labeled: bool) -> Tuple[str, ...]:
        names = ("ddf", "pred_fixed_image", "moving_segmentation", "fixed_segmentation")
        if labeled:
            names += (
                "pred_fixed_label",
                "registration_fixed_label",
                "registration_pred_fixed_label",
                "segmentation_target",
                "segmentation_pred",
            )
        return names

    def active_categories(self) -> Tuple[str, ...]:
        return self.usable_categories(self.labeled)

    @classmethod
    def validate_train_config(cls, checker, train, labeled, method):
        super().validate_train_config(checker, train, labeled, method)
        base = ("train",)
        if labeled is False:
            checker.error(
                base + ("method",),
                f"{method!r} needs labeled data (train.joint.labeled_fraction hides labels from part of the "
                "training pairs; validation scores all of them), but dataset.train.labeled is false",
            )
        seg = train.get("segmenter") if isinstance(train.get("segmenter"), dict) else {}
        if seg.get("target", "label") != "label":
            checker.error(base + ("segmenter", "target"), "the joint model's segmenters learn the labels: use label")
        if seg.get("trainable", True) is False:
            checker.error(
                base + ("segmenter", "trainable"),
                "the joint model trains its segmenters (segmentation step); for frozen segmenters use wssamnet",
            )
        if train.get("attention") is not None:
            checker.error(base + ("attention",), "the joint model has no attention input; remove train.attention")
        joint = train.get("joint")
        if joint is None:
            return
        if not isinstance(joint, dict):
            checker.error(base + ("joint",), f"must be a mapping {{{', '.join(JOINT_KEYS)}}}, got {joint!r}")
            return
        checker.unknown_keys(base + ("joint",), joint, JOINT_KEYS, "train.joint")
        fraction = joint.get("labeled_fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
            checker.error(base + ("joint", "labeled_fraction"), f"must be a number in [0, 1], got {fraction!r}")
        seed = joint.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            checker.error(base + ("joint", "seed"), f"must be an integer >= 0, got {seed!r}")
        if "pseudo_labels" in joint:
            checker.one_of(base + ("joint", "pseudo_labels"), joint["pseudo_labels"], PSEUDO_LABELS)
        for key in ("moving_modality", "fixed_modality"):
            if key in joint and (not isinstance(joint[key], str) or not joint[key]):
                checker.error(base + ("joint", key), f"must be a modality name such as MR or CT, got {joint[key]!r}")
        cls._check_modalities(checker, train, joint)

    @staticmethod
    def _check_modalities(checker, train, joint) -> None:
        """Warn when ``init_from`` loads a segmenter trained on another modality than its role's here (swapped
        modalities would silently feed the CT network MR images)."""
        init = train.get("init_from")
        for i, item in enumerate(init if isinstance(init, list) else [init]):
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                continue
            parts = item.get("parts")
            targets = list(parts) if isinstance(parts, (list, dict)) else []
            recorded = None
            for target in targets:
                part = str(target).split("/")[0]
                if part not in ("moving_segmenter", "fixed_segmenter"):
                    continue
                expected = joint.get(f"{SEGMENTER_ROLES[part]}_modality")
                if expected is None:
                    continue
                recorded = recorded if recorded is not None else recorded_modality(item["path"])
                if recorded is not None and recorded.lower() != str(expected).lower():
                    path = ("train", "init_from") + ((i,) if isinstance(init, list) else ())
                    checker.warn(
                        path,
                        f"loads {part} (which segments the {SEGMENTER_ROLES[part]} images, "
                        f"train.joint.{SEGMENTER_ROLES[part]}_modality: {expected}) from {item['path']}, a "
                        f"segmenter trained on {recorded} images (its train.modality): are the modalities swapped?",
                    )

    # ------------------------------------------------------------------ construction
    def build_networks(self, config: Dict[str, Any]) -> None:
        """The registration backbone and the segmenters (heads sized from the data), and the visible pairs."""
        if not self.labeled:
            raise ValueError(
                "the joint model needs labeled data (train.joint.labeled_fraction hides labels from part of the "
                "training pairs); dataset.train.labeled is false"
            )
        seg = config.get("segmenter")
        if isinstance(seg, dict):
            try:
                head = resolve_head(dict(seg.get("head") or {}), self.label_count)
            except ValueError as err:
                raise ValueError(f"train.segmenter.{err}") from None
            config = dict(config, segmenter=dict(seg, head=head))
        super().build_networks(config)
        if not self.segmenters_trainable or self.target != "label":
            raise ValueError("the joint model needs trainable segmenters with target: label")
        joint = config.get("joint") or {}
        if not isinstance(joint, dict):
            raise ValueError(f"train.joint must be a mapping {{{', '.join(JOINT_KEYS)}}}, got {joint!r}")
        unknown = [k for k in joint if k not in JOINT_KEYS]
        if unknown:
            raise ValueError(f"train.joint has unknown key(s) {unknown}; allowed: {list(JOINT_KEYS)}")
        self.labeled_fraction = check_number(joint.get("labeled_fraction", 1.0), "train.joint.labeled_fraction", 0, 1)
        self.seed = check_int(joint.get("seed", 0), "train.joint.seed", minimum=0)
        self.pseudo_labels = check_choice(
            joint.get("pseudo_labels", "binary"), "train.joint.pseudo_labels", PSEUDO_LABELS
        )
        self.visible_table = None
        if 0.0 < self.labeled_fraction < 1.0:
            if self.num_pairs is None:
                raise ValueError(
                    f"train.joint.labeled_fraction {self.labeled_fraction} needs the number of training pairs: "
                    "pass num_pairs= (tfreg_train passes the loader's)"
                )
            visible = labeled_pairs(self.num_pairs, self.labeled_fraction, self.seed)
            self.visible_table = visible.astype("float32")
            logger.info(
                "joint model: labels visible for %d of %d training pairs (labeled_fraction %s, seed %d): %s",
                int(visible.sum()),
                self.num_pairs,
                self.labeled_fraction,
                self.seed,
                np.flatnonzero(visible).tolist(),
            )

    # ------------------------------------------------------------------ forward
    def visible(self, inputs, training=None):
        """``(B,)`` float32: 1 where the pair's labels may be used, 0 where they are hidden (training only)."""
        batch = ops.shape(inputs["fixed_image"])[0]
        if not training or self.labeled_fraction >= 1.0:
            return ops.ones((batch,), "float32")
        if self.labeled_fraction <= 0.0:
            return ops.zeros((batch,), "float32")
        if "indices" not in inputs:
            raise ValueError("train.joint.labeled_fraction needs inputs['indices'] (the pair index comes first)")
        pair = ops.cast(ops.round(ops.cast(inputs["indices"], "float32")[:, 0]), "int32")
        # an index beyond the table (not a training loader's) wraps rather than failing inside the graph
        pair = ops.mod(pair, self.num_pairs)
        return ops.take(ops.convert_to_tensor(self.visible_table), pair, axis=0)

    def _segmentation_channels(self, probabilities, label, indices):
        """The predicted structure channels scored against ``label`` (``(B, *S)`` or ``(B, *S, L)``, as it)."""
        return matched_prediction(foreground(probabilities, self.head_activation), label, indices, self.ndim)

    def _pseudo(self, probabilities):
        probabilities = ops.stop_gradient(probabilities)
        if self.pseudo_labels == "binary":
            return ops.cast(binarise(probabilities), "float32")
        return probabilities

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        moving_p, fixed_p = self.segment(inputs, training)
        out = self.backbone(self.backbone_input(inputs), training=training)
        ddf = out[0] if isinstance(out, (tuple, list)) else out
        outputs = {
            "ddf": ddf,
            "pred_fixed_image": warp(ops.cast(inputs["moving_image"], "float32"), ddf),
            "moving_segmentation": moving_p,
            "fixed_segmentation": fixed_p,
        }
        if not self._has_labels(inputs):
            return outputs
        moving_label = ops.cast(inputs["moving_label"], "float32")
        fixed_label = ops.cast(inputs["fixed_label"], "float32")
        outputs["pred_fixed_label"] = warp(moving_label, ddf)
        indices = inputs.get("indices")
        seg_m = self._segmentation_channels(moving_p, moving_label, indices)
        seg_f = self._segmentation_channels(fixed_p, fixed_label, indices)
        visible = self.visible(inputs, training)

        def per_sample(flag, like):
            return ops.reshape(flag, (-1,) + (1,) * (len(like.shape) - 1)) > 0.5

        # registration step (E_label): ground truth where visible, the segmenters' predictions elsewhere
        reg_m = ops.where(per_sample(visible, moving_label), moving_label, self._pseudo(seg_m))
        reg_f = ops.where(per_sample(visible, fixed_label), fixed_label, self._pseudo(seg_f))
        outputs["registration_fixed_label"] = reg_f
        outputs["registration_pred_fixed_label"] = warp(reg_m, ddf)
        # segmentation step (E_seg, Eq. 16): supervision where visible, cross-modal consistency elsewhere
        consistency = warp(seg_m, ops.stop_gradient(ddf))
        target_f = ops.where(per_sample(visible, fixed_label), fixed_label, consistency)
        zeros = ops.zeros_like(moving_label)
        target_m = ops.where(per_sample(visible, moving_label), moving_label, zeros)
        pred_m = ops.where(per_sample(visible, moving_label), seg_m, zeros)
        if tuple(target_m.shape[1:]) != tuple(target_f.shape[1:]):
            # different grids: bring the moving entries onto the fixed grid so the halves stack
            target_m, pred_m = (self._on_fixed_grid(t) for t in (target_m, pred_m))
        outputs["segmentation_target"] = ops.concatenate([target_f, target_m], axis=0)
        outputs["segmentation_pred"] = ops.concatenate([seg_f, pred_m], axis=0)
        return outputs

    def _on_fixed_grid(self, tensor):
        if len(tensor.shape) == self.ndim + 1:
            return resize(_with_channel(tensor), self.fixed_image_size)[..., 0]
        return resize(tensor, self.fixed_image_size)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(num_pairs=self.num_pairs, label_count=self.label_count)
        return config


def visible_pair_indices(model: JointModel) -> List[int]:
    """The training pairs whose labels ``model`` uses (all when ``labeled_fraction`` is 1, none at 0)."""
    if model.labeled_fraction >= 1.0:
        return list(range(model.num_pairs or 0))
    if model.visible_table is None:
        return []
    return np.flatnonzero(model.visible_table).tolist()


__all__ = ["JointModel", "JOINT_KEYS", "PSEUDO_LABELS", "labeled_pairs", "recorded_modality", "visible_pair_indices"]
