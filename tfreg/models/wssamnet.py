"""Segmentation-guided attention registration (``train.method: wssamnet``): WSSAMNet and WSSAMNet++.

One class serves both papers by configuration:

* WSSAMNet (Nasser et al., "WSSAMNet: Weakly Supervised Semantic Attentive Medical Image Registration
  Network"): two segmenters (one per image), trained end to end with the registration network (the
  segmentation losses are added to the registration losses), attention ``O = S * I``, a U-Net
  registration network on the concatenated attentive images.
* WSSAMNet++ ("Leveraging Segmentation to Improve Medical Image Registration"): pre-trained, frozen
  segmenters, one shared by both images (single modality) or one per modality. The attention is
  ``contour`` (``O = |Lap(M)| M + I``), ``masking``, ``mask_only`` or ``concat``, and ``none`` is the
  images-only ablation. Any registration backbone can be used.

The pipeline, for moving ``I_m (B, *m)`` and fixed ``I_f (B, *f)`` images (channels optional):

1. ``P_m = seg_m(I_m)``, ``P_f = seg_f(I_f)``: class probabilities ``(B, *S, K)``; their structure
   channels (all of a sigmoid head, all but the background of a softmax one) are the masks ``M_m``, ``M_f``.
2. ``O_m = att([I_m, M_m])``, ``O_f = att([I_f, M_f])`` (``attention_class``; ``none``: ``O = I``).
3. ``ddf = backbone(concat[resize(O_m -> f), O_f])`` on the fixed grid, in moving voxels (zero-initialised
   head, as DeepReg's ``ddf`` model).
4. The DDF warps the **original** moving image and label (not the attentive ones).

``train`` keys (besides DeepReg's ``backbone`` and ``loss``)::

    segmenter:
      backbone: {name: unet_segmenter, channels: [8, 16, 32]}
      head: {num_classes: 1, activation: sigmoid}
      shared: false        # one segmenter for both images (single-modality WSSAMNet++); default: one each
      trainable: true      # WSSAMNet: end to end; false: frozen (WSSAMNet++, load it with train.init_from)
      target: label        # what the segmenters learn: the labels, or roi (WSSAMNet: 9^3 cubes around the
                           # landmarks, dataset.landmark_roi_size)
    attention: {name: masking}    # contour / masking / roi / mask_only / concat / none

Loss categories: DeepReg's ``image``, ``label``, ``regularization``, plus ``segmentation`` on
``(target_label, pred_label)``. These are the segmenters' targets (the moving and fixed labels, or the
ROI maps ``moving_roi`` / ``fixed_roi``) and their matching predictions, stacked along the batch, moving
first. The ``segmentation`` category is only allowed with
trainable segmenters. Its weight is the paper's loss coupling, which WSSAMNet does not give. Here it is
1 per term, logged under the loss' own name.

Frozen segmenters run in inference mode (no BatchNormalization updates). They get no gradient and are
left out of ``trainable_variables``. A pre-trained segmenter is loaded part by part from a
segmentation run's checkpoint::

    init_from:
      path: logs/segmenter/save/ckpt-50
      parts: {moving_segmenter/backbone: backbone, moving_segmenter/head: head,
              fixed_segmenter/backbone: backbone, fixed_segmenter/head: head}

(``segmenter/...`` when ``shared``). ``attention: {name: roi, input_type: landmarks}`` builds the ROI
from the data's landmarks instead of a segmentation (``dataset.landmarks: true``).

Parameter groups (for the ``alternating`` trainer): ``registration`` (the registration backbone) and
``segmentation`` (the segmenters).
"""

from typing import Any, Dict, Tuple

from keras import ops

from tfreg.checks import check_bool, check_choice
from tfreg.models.base import _with_channel
from tfreg.models.ddf import DDFModel
from tfreg.models.segmentation import HEAD_ACTIVATIONS, HEAD_KEYS, matched_prediction
from tfreg.models.segmenter import Segmenter, decode_masks, foreground
from tfreg.ops.resize import resize
from tfreg.ops.warp import warp
from tfreg.registry import ATTENTION_CLASS, BACKBONE_CLASS, REGISTRY

#: keys of ``train.segmenter``
SEGMENTER_KEYS = ("backbone", "head", "shared", "trainable", "target")
#: what the segmenters learn: the label maps or the landmark ROI maps
SEGMENTER_TARGETS = ("label", "roi")
#: the attention name of the images-only ablation (no attention layer)
NO_ATTENTION = "none"


@REGISTRY.register_model(name="wssamnet")
class WSSAMNetModel(DDFModel):
    """Segmenters, a segmentation-guided attention and a DDF registration network; see the module docstring.

    Args: as :class:`~tfreg.models.base.RegistrationModel`; ``config`` is the ``train`` section with
    ``backbone``, ``loss``, ``segmenter`` and ``attention``.

    Call: the input dict -> the DDF model's outputs (``ddf``, ``pred_fixed_image``, ``pred_fixed_label``)
    plus ``moving_segmentation`` / ``fixed_segmentation`` ``(B, *S, K)`` (probabilities),
    ``moving_attention`` / ``fixed_attention`` (the registration network's two inputs, ``(B, *S, C')``) and,
    with labels and trainable segmenters, ``target_label`` / ``pred_label`` (the ``segmentation`` pair).
    """

    loss_inputs = dict(DDFModel.loss_inputs, segmentation=("target_label", "pred_label"))
    config_keys = ("backbone", "loss", "segmenter", "attention")
    prediction_images = {
        "moving_segmentation": "moving",
        "fixed_segmentation": "fixed",
        "moving_attention": "moving",
        "fixed_attention": "fixed",
    }
    required_config_keys = ("backbone", "loss", "segmenter")
    #: ``train.segmenter`` values used where the config leaves a key out (subclasses set their paper's)
    segmenter_defaults: Dict[str, Any] = {}
    #: ``train.attention`` when the config has none
    default_attention: Dict[str, Any] = {"name": NO_ATTENTION}

    def __init__(
        self,
        *args,
        roi_available: bool = False,
        landmarks_available: bool = False,
        name: str = "WSSAMNetModel",
        **kwargs,
    ):
        # set before the base constructor, which builds the networks and checks them against the data
        self.roi_available = bool(roi_available)
        self.landmarks_available = bool(landmarks_available)
        super().__init__(*args, name=name, **kwargs)

    @classmethod
    def data_arguments(cls, loader) -> Dict[str, Any]:
        """Whether the data has landmarks and ROI maps (``dataset.landmarks``, ``landmark_roi_size``)."""
        return {
            "landmarks_available": bool(getattr(loader, "landmarks", False)),
            "roi_available": getattr(loader, "landmark_roi_size", None) is not None,
        }

    # ------------------------------------------------------------------ contract
    @classmethod
    def output_names(cls, labeled: bool) -> Tuple[str, ...]:
        names = super().output_names(labeled) + (
            "moving_segmentation",
            "fixed_segmentation",
            "moving_attention",
            "fixed_attention",
        )
        # the segmentation pair exists with labels or with ROI maps; the model checks at build which it has
        return names + ("target_label", "pred_label")

    @classmethod
    def parameter_group_names(cls) -> Tuple[str, ...]:
        return ("registration", "segmentation")

    def parameter_groups(self) -> Dict[str, list]:
        segmenters = [s for s in (self.moving_segmenter, self.fixed_segmenter) if s is not None]
        seen, segmentation = set(), []
        for segmenter in segmenters:
            for v in segmenter.trainable_variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    segmentation.append(v)
        return {"registration": self.backbone.trainable_variables, "segmentation": segmentation}

    def active_categories(self) -> Tuple[str, ...]:
        """Without ``segmentation`` when the segmenters are frozen (they produce no segmentation pair)."""
        categories = super().active_categories()
        return categories if self.segmenters_trainable else tuple(c for c in categories if c != "segmentation")

    @classmethod
    def label_categories(cls, train) -> Tuple[str, ...]:
        """``label``, and ``segmentation`` when the segmenters learn the labels (not the ROI maps)."""
        seg = train.get("segmenter") if isinstance(train.get("segmenter"), dict) else {}
        target = {**cls.segmenter_defaults, **seg}.get("target", "label")
        return super().label_categories(train) + (("segmentation",) if target == "label" else ())

    @classmethod
    def validate_train_config(cls, checker, train, labeled, method):
        super().validate_train_config(checker, train, labeled, method)
        base = ("train",)
        seg = train.get("segmenter")
        if seg is not None and not isinstance(seg, dict):
            checker.error(base + ("segmenter",), f"must be a mapping {{{', '.join(SEGMENTER_KEYS)}}}, got {seg!r}")
            seg = None
        if seg is not None:
            seg = {**cls.segmenter_defaults, **seg}
            checker.unknown_keys(base + ("segmenter",), seg, SEGMENTER_KEYS, "train.segmenter")
            if "backbone" not in seg:
                checker.error(base + ("segmenter",), "missing required key 'backbone' (e.g. {name: unet_segmenter})")
            else:
                checker.check_component(base + ("segmenter", "backbone"), seg["backbone"], BACKBONE_CLASS)
            head = seg.get("head")
            if head is not None:
                if not isinstance(head, dict):
                    checker.error(
                        base + ("segmenter", "head"), f"must be a mapping {{num_classes, activation}}, got {head!r}"
                    )
                else:
                    checker.unknown_keys(base + ("segmenter", "head"), head, HEAD_KEYS, "train.segmenter.head")
                    if head.get("num_classes") is not None:
                        checker.positive_int(base + ("segmenter", "head", "num_classes"), head["num_classes"])
                    if "activation" in head:
                        checker.one_of(base + ("segmenter", "head", "activation"), head["activation"], HEAD_ACTIVATIONS)
            for key in ("shared", "trainable"):
                if key in seg and not isinstance(seg[key], bool):
                    checker.error(base + ("segmenter", key), f"must be true or false, got {seg[key]!r}")
            if "target" in seg:
                checker.one_of(base + ("segmenter", "target"), seg["target"], SEGMENTER_TARGETS)
            if seg.get("trainable", True) is False:
                cls._check_pretrained(checker, train, bool(seg.get("shared", False)))
            loss = train.get("loss") if isinstance(train.get("loss"), dict) else {}
            if seg.get("trainable", True) is False and loss.get("segmentation") is not None:
                checker.error(
                    base + ("loss", "segmentation"),
                    "the segmenters are frozen (train.segmenter.trainable: false), so a segmentation loss would "
                    "train nothing; remove it, or set trainable: true to train them end to end",
                )
        attention = train.get("attention")
        if attention is not None:
            if not isinstance(attention, dict) or "name" not in attention:
                checker.error(base + ("attention",), f"must be a mapping {{name, ...}}, got {attention!r}")
            elif attention["name"] != NO_ATTENTION:
                # weight-free layers: building one checks its arguments before any data is read
                checker.check_component(base + ("attention",), attention, ATTENTION_CLASS, build=True)

    @staticmethod
    def _check_pretrained(checker, train, shared: bool) -> None:
        """Frozen segmenters must get pre-trained weights from ``train.init_from``: random frozen segmenters
        would silently feed noise to the attention."""
        names = ("segmenter",) if shared else ("moving_segmenter", "fixed_segmenter")
        init = train.get("init_from")
        targets = []
        for item in init if isinstance(init, list) else [init]:
            parts = item.get("parts") if isinstance(item, dict) else None
            targets += list(parts) if isinstance(parts, (list, dict)) else []
        missing = [n for n in names if not any(t == n or t.startswith(n + "/") for t in targets)]
        if missing:
            example = ", ".join(f"{n}/backbone: backbone, {n}/head: head" for n in names)
            checker.error(
                ("train", "segmenter", "trainable"),
                f"frozen segmenters need pre-trained weights, but train.init_from does not load {', '.join(missing)}; "
                f"train a segmentation model first and set init_from: {{path: .../save/ckpt-N, parts: {{{example}}}}}",
            )

    # ------------------------------------------------------------------ construction
    def build_networks(self, config: Dict[str, Any]) -> None:
        """The registration backbone, the segmenter(s) and the attention layer (None for ``none``)."""
        super().build_networks(config)
        seg = config.get("segmenter")
        if not isinstance(seg, dict) or "backbone" not in seg:
            raise ValueError(f"train.segmenter must be a mapping with a backbone, got {seg!r}")
        seg = {**self.segmenter_defaults, **seg}
        unknown = [k for k in seg if k not in SEGMENTER_KEYS]
        if unknown:
            raise ValueError(f"train.segmenter has unknown key(s) {unknown}; allowed: {list(SEGMENTER_KEYS)}")
        self.shared = check_bool(seg.get("shared", False), "train.segmenter.shared")
        self.segmenters_trainable = check_bool(seg.get("trainable", True), "train.segmenter.trainable")
        if self.shared and self.moving_image_size != self.fixed_image_size:
            raise ValueError(
                f"train.segmenter.shared: one segmenter for both images needs one image shape, got moving "
                f"{self.moving_image_size} and fixed {self.fixed_image_size}"
            )
        self.target = check_choice(seg.get("target", "label"), "train.segmenter.target", SEGMENTER_TARGETS)
        loss = config.get("loss") if isinstance(config.get("loss"), dict) else {}
        if loss.get("segmentation") is not None:
            if not self.segmenters_trainable:
                raise ValueError(
                    "loss.segmentation is configured but train.segmenter.trainable is false: the frozen segmenters "
                    "cannot learn from it"
                )
            if self.target == "label" and not self.labeled:
                raise ValueError(
                    "loss.segmentation trains the segmenters on the labels (train.segmenter.target: label), but the "
                    "data is unlabeled; set target: roi with dataset.landmarks: true and dataset.landmark_roi_size "
                    "(WSSAMNet's landmark cubes), or remove the segmentation loss"
                )
            if self.target == "roi" and not self.roi_available:
                raise ValueError(
                    "train.segmenter.target is roi, but the data has no ROI maps: set dataset.landmarks: true and "
                    "dataset.landmark_roi_size (e.g. 9, WSSAMNet's cubes)"
                )
        make = lambda size, name: Segmenter(  # noqa: E731
            size, seg["backbone"], seg.get("head"), registry=self.registry, name=name
        )
        if self.shared:
            self.segmenter = make(self.fixed_image_size, "segmenter")
            self.moving_segmenter = self.fixed_segmenter = None
        else:
            self.segmenter = None
            self.moving_segmenter = make(self.moving_image_size, "moving_segmenter")
            self.fixed_segmenter = make(self.fixed_image_size, "fixed_segmenter")
        for segmenter in (self.segmenter, self.moving_segmenter, self.fixed_segmenter):
            if segmenter is not None:
                segmenter.trainable = self.segmenters_trainable
        attention = config.get("attention") or dict(self.default_attention)
        if not isinstance(attention, dict) or "name" not in attention:
            raise ValueError(f"train.attention must be a mapping {{name, ...}}, got {attention!r}")
        self.attention_name = attention["name"]
        self.attention = (
            None if self.attention_name == NO_ATTENTION else self.registry.build_attention(config=dict(attention))
        )
        self.attention_from_landmarks = getattr(self.attention, "input_type", None) == "landmarks"
        if self.attention_from_landmarks and not self.landmarks_available:
            raise ValueError(
                "train.attention roi with input_type landmarks builds the ROI from the data's landmarks, but the "
                "data has none: set dataset.landmarks: true (landmark files beside the images), or use input_type "
                "mask (the segmenters' ROI prediction)"
            )

    # ------------------------------------------------------------------ forward
    def segment(self, inputs, training=None):
        """``(moving probabilities, fixed probabilities)``, each ``(B, *S, K)``."""
        moving, fixed = _with_channel(inputs["moving_image"]), _with_channel(inputs["fixed_image"])
        training = training if self.segmenters_trainable else False
        if self.shared:
            both = self.segmenter(ops.concatenate([moving, fixed], axis=0), training=training)
            moving_p, fixed_p = ops.split(both, 2, axis=0)
        else:
            moving_p = self.moving_segmenter(moving, training=training)
            fixed_p = self.fixed_segmenter(fixed, training=training)
        if not self.segmenters_trainable:
            moving_p, fixed_p = ops.stop_gradient(moving_p), ops.stop_gradient(fixed_p)
        return moving_p, fixed_p

    @property
    def head_activation(self) -> str:
        return (self.segmenter or self.moving_segmenter).activation

    @property
    def prediction_label_maps(self) -> Dict[str, str]:
        """Segmentations ``tfreg_predict`` decodes into masks (``<output>_mask.nii.gz``) and scores against
        the segmenters' target (labels; ROI maps are not written by predict, so only the masks then)."""
        return {f"{role}_segmentation": f"{role}_{self.target}" for role in ("moving", "fixed")}

    def label_masks(self, name: str, probabilities):
        """The predicted masks of one segmentation output: ``(B, *S, K)`` -> ``(B, *S, L)`` bool (see
        :func:`tfreg.models.segmenter.decode_masks`)."""
        if name not in self.prediction_label_maps:
            raise ValueError(f"label_masks: {name!r} is not one of {sorted(self.prediction_label_maps)}")
        segmenter = self.segmenter or self.moving_segmenter
        return decode_masks(probabilities, segmenter.activation, segmenter.num_classes)

    def attend(self, inputs, role: str, probabilities):
        """The registration network's input for ``role``'s image: ``att([I, M])``, ``(B, *S, C')``; with
        landmark ROI attention, ``att([I, landmarks])`` (padding rows as NaN, which the cubes skip)."""
        image = _with_channel(ops.cast(inputs[f"{role}_image"], "float32"))
        if self.attention is None:
            return image
        if self.attention_from_landmarks:
            if f"{role}_landmarks" not in inputs:
                raise ValueError(f"the roi attention needs inputs[{role + '_landmarks'!r}] (dataset.landmarks: true)")
            landmarks = ops.cast(inputs[f"{role}_landmarks"], "float32")
            if "landmark_mask" in inputs:
                valid = ops.expand_dims(ops.cast(inputs["landmark_mask"], "float32"), -1) > 0
                landmarks = ops.where(valid, landmarks, float("nan"))
            return self.attention([image, landmarks])
        return self.attention([image, foreground(probabilities, self.head_activation)])

    def predict_field(self, inputs, training=None):
        """``(ddf, extra outputs)`` from the attentive images (DDFModel's hook, so ``ddf_backward`` works)."""
        moving_p, fixed_p = self.segment(inputs, training)
        moving_att, fixed_att = self.attend(inputs, "moving", moving_p), self.attend(inputs, "fixed", fixed_p)
        field_input = ops.concatenate([resize(moving_att, self.fixed_image_size), fixed_att], axis=-1)
        out = self.backbone(field_input, training=training)
        extra = {
            "moving_segmentation": moving_p,
            "fixed_segmentation": fixed_p,
            "moving_attention": moving_att,
            "fixed_attention": fixed_att,
        }
        if isinstance(out, (tuple, list)):
            return out[0], dict(extra, theta=out[1])
        return out, extra

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        ddf, outputs = self.predict_field(inputs, training=training)
        outputs = dict(outputs, ddf=ddf)
        outputs["pred_fixed_image"] = warp(ops.cast(inputs["moving_image"], "float32"), ddf)
        if self._has_labels(inputs):
            outputs["pred_fixed_label"] = warp(ops.cast(inputs["moving_label"], "float32"), ddf)
        target_keys = [f"{role}_{self.target}" for role in ("moving", "fixed")]
        if (
            self.segmenters_trainable
            and all(k in inputs for k in target_keys)
            and (self.target == "roi" or self.labeled)
        ):
            outputs.update(self._segmentation_pair(inputs, outputs))
        if "ddf_backward" in self.requested_outputs:
            swapped = dict(inputs, moving_image=inputs["fixed_image"], fixed_image=inputs["moving_image"])
            if "moving_landmarks" in inputs and "fixed_landmarks" in inputs:
                swapped.update(moving_landmarks=inputs["fixed_landmarks"], fixed_landmarks=inputs["moving_landmarks"])
            outputs["ddf_backward"], _ = self.predict_field(swapped, training=training)
        return outputs

    def _segmentation_pair(self, inputs, outputs) -> Dict[str, Any]:
        """``target_label`` / ``pred_label``: the moving then fixed targets (labels or ROI maps, per
        ``segmenter.target``) and the matching predicted channels.

        A label ``(B, *S)`` (DeepReg's one channel per sample) is matched to the predicted channel given by
        the last entry of ``indices``; ``(B, *S, L)`` to all ``L`` structure channels.
        """
        activation = self.head_activation
        targets, preds = [], []
        for role in ("moving", "fixed"):
            label = ops.cast(inputs[f"{role}_{self.target}"], "float32")
            targets.append(label)
            preds.append(
                matched_prediction(
                    foreground(outputs[f"{role}_segmentation"], activation), label, inputs.get("indices"), self.ndim
                )
            )
        if targets[0].shape[1:] != targets[1].shape[1:]:
            # different grids: bring the moving pair onto the fixed grid so the two stack
            targets[0], preds[0] = (resize(_with_channel(t), self.fixed_image_size) for t in (targets[0], preds[0]))
            if len(targets[1].shape) == self.ndim + 1:
                targets[0], preds[0] = targets[0][..., 0], preds[0][..., 0]
        return {"target_label": ops.concatenate(targets, axis=0), "pred_label": ops.concatenate(preds, axis=0)}


__all__ = ["WSSAMNetModel", "SEGMENTER_KEYS", "SEGMENTER_TARGETS", "NO_ATTENTION"]
