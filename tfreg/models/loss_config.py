"""Parsing of the ``train.loss`` config section into built losses with weights and DeepReg's log names.

The section has one key per loss category of the model (DeepReg's ``image``, ``label`` and
``regularization`` for registration models; a composite model adds its own, e.g. ``segmentation``),
each a dict ``{name, weight, **kwargs}`` or a list of such dicts. Rules (DeepReg's, with its weight-0 bug
fixed):

- a missing ``weight`` becomes 1.0, with a warning;
- ``weight: 0`` skips that loss only (DeepReg also skipped the rest of the list);
- a category the model does not have is an error naming the model's categories; a category the model
  has but cannot use for this data (``label`` without labels) is skipped by the caller; an absent
  category is skipped with a warning;
- keys naming one of the loss' declared tensor inputs (:mod:`tfreg.loss_inputs`, e.g. the rigidity
  penalty's ``mask``) are wiring, not constructor arguments: they are split off into ``inputs``.

Losses are built with ``REGISTRY.build_loss(cfg, default_args={"reduction": None})`` so that they return
one value per sample ``(B,)``.
"""

import logging
import warnings
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Dict, List, Optional, Sequence

from tfreg.checks import LOSS_CATEGORIES
from tfreg.loss_inputs import TensorSource, split_loss_entry
from tfreg.registry import LOSS_CLASS, REGISTRY

logger = logging.getLogger(__name__)


@dataclass
class WeightedLoss:
    """A built loss with its category, weight and the two metric names it is logged under.

    Attributes:
        category: ``"image"``, ``"label"`` or ``"regularization"``.
        loss: the callable: ``loss(y_true, y_pred) -> (B,)`` (image/label) or ``loss(ddf) -> (B,)``.
        weight: float > 0.
        log_name: ``loss/<category>_<LossName>`` (LossName = the loss' Keras name, its class name by
            default; a repeated name gets a suffix ``_2``, ``_3``, ...).
        inputs: ``{call keyword: TensorSource}``: the extra tensors the model passes to the loss.
    """

    category: str
    loss: Any
    weight: float
    log_name: str
    inputs: Dict[str, TensorSource] = field(default_factory=dict)

    @property
    def weighted_log_name(self) -> str:
        """``loss/<category>_<LossName>_weighted``."""
        return self.log_name + "_weighted"


def _entries(category: str, section: Any) -> List[Dict]:
    if isinstance(section, dict):
        return [section]
    if isinstance(section, (list, tuple)):
        for entry in section:
            if not isinstance(entry, dict):
                raise ValueError(f"loss.{category} entries must be dicts {{name, weight, ...}}, got {entry!r}")
        return list(section)
    raise ValueError(f"loss.{category} must be a dict or a list of dicts {{name, weight, ...}}, got {section!r}")


def build_losses(
    loss_config: Optional[Dict],
    categories: Sequence[str] = LOSS_CATEGORIES,
    registry=REGISTRY,
    usable: Optional[Sequence[str]] = None,
    owner: str = "the model",
) -> List[WeightedLoss]:
    """Build the weighted losses of ``loss_config`` for a model's loss ``categories``.

    Args:
        loss_config: the ``train.loss`` section, e.g. ``{"image": {"name": "lncc", "weight": 1.0},
            "regularization": [{"name": "bending", "weight": 0.5}]}``; None means no losses.
        categories: every category the model has (its loss table's keys, in order); any other key of
            the section is a ValueError.
        registry: the registry to build from (a ``REGISTRY.copy()`` in tests).
        usable: the categories that apply to this data (default all); the others are skipped, with a
            warning when the section configures them (e.g. ``label`` when the data has no labels, which
            DeepReg skipped silently).
        owner: the model's name, for error messages.

    Returns:
        the :class:`WeightedLoss` list in category order, then config order.

    Raises:
        ValueError: a malformed section or entry, an unknown category, a negative or non-numeric
            weight, an unknown loss name, or a declared tensor input that is missing or malformed.
    """
    if loss_config is None:
        return []
    categories = tuple(categories)
    if not isinstance(loss_config, dict):
        raise ValueError(f"loss must be a dict with keys among {list(categories)}, got {loss_config!r}")
    unknown = sorted(set(loss_config) - set(categories))
    if unknown:
        raise ValueError(
            f"loss has categories {unknown} that {owner} does not have; its categories: {list(categories)}"
        )
    usable = categories if usable is None else tuple(usable)
    built: List[WeightedLoss] = []
    used_names = set()
    for category in categories:
        if category not in usable:
            if loss_config.get(category) is not None:
                logger.warning(
                    "loss.%s is configured but %s does not compute it on this data (e.g. label losses on "
                    "unlabeled data): it is skipped.",
                    category,
                    owner,
                )
            continue
        if loss_config.get(category) is None:
            logger.warning("The %s loss is not configured (loss.%s is missing): it is skipped.", category, category)
            continue
        for entry in _entries(category, loss_config[category]):
            weight = _weight(category, entry)
            if weight == 0:
                logger.info("loss.%s %r has weight 0: skipped.", category, entry.get("name"))
                continue
            if "name" not in entry:
                raise ValueError(f"loss.{category} entry {entry!r} has no 'name'")
            split = split_loss_entry(registry.get(LOSS_CLASS, entry["name"]), entry)
            if split.problems:
                keys, message = split.problems[0]
                raise ValueError(f"loss.{category} {entry['name']!r} {'.'.join(map(str, keys))}: {message}")
            loss = registry.build_loss(config=split.kwargs, default_args={"reduction": None})
            base = f"loss/{category}_{getattr(loss, 'name', None) or type(loss).__name__}"
            log_name, k = base, 1
            while log_name in used_names:
                k += 1
                log_name = f"{base}_{k}"
            used_names.add(log_name)
            built.append(
                WeightedLoss(category=category, loss=loss, weight=weight, log_name=log_name, inputs=split.inputs)
            )
    return built


def _weight(category: str, entry: Dict) -> float:
    """The entry's weight (1.0 with a warning when missing); ValueError unless a number >= 0."""
    if "weight" not in entry:
        warnings.warn(f"loss.{category} {entry.get('name')!r} has no weight: using 1.0", UserWarning, stacklevel=3)
        return 1.0
    weight = entry["weight"]
    if isinstance(weight, bool) or not isinstance(weight, Real) or weight < 0:
        raise ValueError(f"loss.{category} {entry.get('name')!r}: weight must be a number >= 0, got {weight!r}")
    return float(weight)


__all__ = ["LOSS_CATEGORIES", "WeightedLoss", "build_losses"]
