"""``deepreg.registry``: tfreg's registry under DeepReg's names (``REGISTRY``, ``Registry``, the category names).

``REGISTRY.register_backbone / register_loss / register_model / register_data_loader /
register_data_augmentation / register_file_loader`` and ``build_*`` keep DeepReg's signatures; see
:mod:`tfreg.registry` for what tfreg adds (closest-match messages, lazy built-ins, more categories).
"""

from tfreg.registry import (
    BACKBONE_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    FILE_LOADER_CLASS,
    KNOWN_CATEGORIES,
    LOSS_CLASS,
    MODEL_CLASS,
    REGISTRY,
    Registry,
)

__all__ = [
    "BACKBONE_CLASS",
    "DATA_AUGMENTATION_CLASS",
    "DATA_LOADER_CLASS",
    "FILE_LOADER_CLASS",
    "KNOWN_CATEGORIES",
    "LOSS_CLASS",
    "MODEL_CLASS",
    "REGISTRY",
    "Registry",
]
