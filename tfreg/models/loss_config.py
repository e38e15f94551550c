"""Parsing of the ``train.loss`` config section into built losses with weights and DeepReg's log names.

The section has up to three categories, ``image``, ``label`` and ``regularization``, each a dict
``{name, weight, **kwargs}`` or a list of such dicts. Rules (DeepReg's, with its weight-0 bug fixed):

- a missing ``weight`` becomes 1.0, with a warning;
- ``weight: 0`` skips that loss only (DeepReg also skipped the rest of the list);
- a category the model cannot use (no labels, or a conditional model's image/regularization) is skipped
  silently by the caller; an absent category is skipped with a warning.

Losses are built with ``REGISTRY.build_loss(cfg, default_args={"reduction": None})`` so that they return
one value per sample ``(B,)``.
"""

import logging
import warnings
from dataclasses import dataclass
from numbers import Real
from typing import Any, Dict, List, Optional

from tfreg.registry import REGISTRY

logger = logging.getLogger(__name__)

LOSS_CATEGORIES = ("image", "label", "regularization")


@dataclass
class WeightedLoss:
    """A built loss with its category, weight and the two metric names it is logged under.

    Attributes:
        category: ``"image"``, ``"label"`` or ``"regularization"``.
        loss: the callable: ``loss(y_true, y_pred) -> (B,)`` (image/label) or ``loss(ddf) -> (B,)``.
        weight: float > 0.
        log_name: ``loss/<category>_<LossName>`` (LossName = the loss' Keras name, its class name by
            default; a repeated name gets a suffix ``_2``, ``_3``, ...).
    """

    category: str
    loss: Any
    weight: float
    log_name: str

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


def build_losses(loss_config: Optional[Dict], categories=LOSS_CATEGORIES, registry=REGISTRY) -> List[WeightedLoss]:
    """Build the weighted losses of ``loss_config`` for the ``categories`` a model uses.

    Args:
        loss_config: the ``train.loss`` section, e.g. ``{"image": {"name": "lncc", "weight": 1.0},
            "regularization": [{"name": "bending", "weight": 0.5}]}``; None means no losses.
        categories: categories that apply to the model; others are skipped silently.
        registry: the registry to build from (a ``REGISTRY.copy()`` in tests).

    Returns:
        the :class:`WeightedLoss` list in config order (image, label, regularization).

    Raises:
        ValueError: a malformed section, a negative or non-numeric weight, or an unknown loss name.
    """
    if loss_config is None:
        return []
    if not isinstance(loss_config, dict):
        raise ValueError(f"loss must be a dict with keys among {list(LOSS_CATEGORIES)}, got {loss_config!r}")
    unknown = sorted(set(loss_config) - set(LOSS_CATEGORIES))
    if unknown:
        raise ValueError(f"loss has unknown categories {unknown}; allowed: {list(LOSS_CATEGORIES)}")
    built: List[WeightedLoss] = []
    used_names = set()
    for category in LOSS_CATEGORIES:
        if category not in categories:
            continue
        if loss_config.get(category) is None:
            logger.warning("The %s loss is not configured (loss.%s is missing): it is skipped.", category, category)
            continue
        for entry in _entries(category, loss_config[category]):
            cfg = dict(entry)
            if "weight" not in cfg:
                warnings.warn(
                    f"loss.{category} {cfg.get('name')!r} has no weight: using 1.0", UserWarning, stacklevel=2
                )
                weight = 1.0
            else:
                weight = cfg.pop("weight")
                if isinstance(weight, bool) or not isinstance(weight, Real) or weight < 0:
                    raise ValueError(
                        f"loss.{category} {cfg.get('name')!r}: weight must be a number >= 0, got {weight!r}"
                    )
                weight = float(weight)
            if weight == 0:
                logger.info("loss.%s %r has weight 0: skipped.", category, cfg.get("name"))
                continue
            loss = registry.build_loss(config=cfg, default_args={"reduction": None})
            base = f"loss/{category}_{getattr(loss, 'name', None) or type(loss).__name__}"
            log_name, k = base, 1
            while log_name in used_names:
                k += 1
                log_name = f"{base}_{k}"
            used_names.add(log_name)
            built.append(WeightedLoss(category=category, loss=loss, weight=weight, log_name=log_name))
    return built


__all__ = ["LOSS_CATEGORIES", "WeightedLoss", "build_losses"]
