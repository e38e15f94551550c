"""tfreg.data: DeepReg's on-disk layouts (paired/unpaired/grouped; NIfTI, HDF5 and other SimpleITK
formats) read into ``tf.data`` pipelines, with each image's geometry kept.

Importing this package registers the file loaders (``nifti``, ``h5``, ``sitk``, ``mha``, ``nrrd``) and
the data loaders (``paired``, ``unpaired``, ``grouped``). TensorFlow is imported only when a dataset is
built (:mod:`tfreg.data.pipeline`).

Main entry points::

    from tfreg.data import get_data_loader
    loader = get_data_loader(config["dataset"], "train")
    dataset = loader.get_dataset_and_preprocess(training=True, batch_size=2, repeat=True,
                                                shuffle_buffer_num_batch=1, data_augmentation=None)
    moving_geometry, fixed_geometry = loader.get_geometry(batch["indices"][0])
    save_image(prediction, "pred.nii.gz", fixed_geometry)

Landmarks (``landmarks: true`` on a paired or self_paired dataset; docs/landmarks.md):
:mod:`tfreg.data.landmarks` (files, coordinates) and :mod:`tfreg.data.landmark_roi` (WSSAMNet's ROI maps).
"""

from tfreg.data import file_loaders, loaders  # noqa: F401  (importing them registers the built-ins)
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders import FileLoader, H5FileLoader, NiftiFileLoader, SimpleITKFileLoader
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, read_image_info, save_image
from tfreg.data.landmark_roi import landmark_roi
from tfreg.data.landmarks import read_landmarks, read_numbered_landmarks
from tfreg.data.load import get_data_loader
from tfreg.data.loaders import DataLoader, GroupedDataLoader, PairedDataLoader, UnpairedDataLoader, steps_per_epoch

__all__ = [
    "DataError",
    "DataNotFoundError",
    "FileLoader",
    "H5FileLoader",
    "NiftiFileLoader",
    "SimpleITKFileLoader",
    "ImageGeometry",
    "read_image",
    "read_image_info",
    "save_image",
    "read_landmarks",
    "read_numbered_landmarks",
    "landmark_roi",
    "get_data_loader",
    "DataLoader",
    "PairedDataLoader",
    "UnpairedDataLoader",
    "GroupedDataLoader",
    "steps_per_epoch",
]
