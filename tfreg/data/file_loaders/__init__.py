"""File loaders (registry category ``file_loader_class``): ``nifti``, ``h5``, ``sitk``, ``mha``, ``nrrd``.

Importing this package registers them. None of them imports TensorFlow.
"""

from tfreg.data.file_loaders.base import FileLoader
from tfreg.data.file_loaders.h5 import H5FileLoader
from tfreg.data.file_loaders.nifti import NiftiFileLoader
from tfreg.data.file_loaders.sitk import MetaImageFileLoader, NrrdFileLoader, SimpleITKFileLoader, SITKFileLoader

__all__ = [
    "FileLoader",
    "H5FileLoader",
    "NiftiFileLoader",
    "SimpleITKFileLoader",
    "SITKFileLoader",
    "MetaImageFileLoader",
    "NrrdFileLoader",
]
