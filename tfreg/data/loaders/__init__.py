"""Data loaders (registry category ``data_loader_class``): ``paired``, ``unpaired``, ``grouped``.

Importing this package registers them; it does not import TensorFlow.
"""

from tfreg.data.loaders.base import DataLoader, steps_per_epoch
from tfreg.data.loaders.grouped import GroupedDataLoader
from tfreg.data.loaders.paired import PairedDataLoader
from tfreg.data.loaders.unpaired import UnpairedDataLoader

__all__ = ["DataLoader", "PairedDataLoader", "UnpairedDataLoader", "GroupedDataLoader", "steps_per_epoch"]
