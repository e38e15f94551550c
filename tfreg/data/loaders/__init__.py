"""Data loaders (registry category ``data_loader_class``): ``paired``, ``unpaired``, ``grouped``, ``self_paired``.

Importing this package registers them; it does not import TensorFlow.
"""

from tfreg.data.loaders.base import DataLoader, steps_per_epoch
from tfreg.data.loaders.grouped import GroupedDataLoader
from tfreg.data.loaders.paired import PairedDataLoader
from tfreg.data.loaders.self_paired import SelfPairedDataLoader
from tfreg.data.loaders.unpaired import UnpairedDataLoader

__all__ = [
    "DataLoader",
    "PairedDataLoader",
    "UnpairedDataLoader",
    "GroupedDataLoader",
    "SelfPairedDataLoader",
    "steps_per_epoch",
]
