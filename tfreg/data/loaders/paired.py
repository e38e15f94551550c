"""The ``paired`` data loader: moving/fixed images that belong together (e.g. MR and ultrasound of one patient).

Layout of each split folder (DeepReg's): ``moving_images``, ``fixed_images`` and, when labeled,
``moving_labels``, ``fixed_labels`` (NIfTI folders or ``.h5`` files). The four must hold the same IDs.
One sample per pair per epoch, in an order shuffled by ``seed``; ``indices`` is ``[i, label]``.

Landmarks (``landmarks: true``, e.g. BraTS-Reg converted by ``data_scripts/brats_reg.py``): the split
folders also hold ``moving_landmarks/<id>.csv`` and ``fixed_landmarks/<id>.csv`` (or ``.txt``), one per
image ID, in mm in each image's physical (LPS) frame, or in voxels with ``landmark_units: voxel``
(:mod:`tfreg.data.landmarks`). Landmarks are paired by their
``Landmark`` number (by row order in files without that column); a number present in only one of the
two files is dropped with a warning. Each sample then has ``moving_landmarks`` / ``fixed_landmarks``
``(max_landmarks, ndim)`` in model voxels, padded with 0, ``landmark_mask`` ``(max_landmarks,)`` (1 =
landmark, 0 = padding) and, with ``landmark_roi_size``, the ROI maps ``moving_roi`` / ``fixed_roi``
(WSSAMNet's segmentation targets, :mod:`tfreg.data.landmark_roi`)::

    dataset:
      type: paired
      train: {dir: data/brats_reg/train, format: nifti, labeled: false}
      moving_image_shape: [240, 240, 155]
      fixed_image_shape: [240, 240, 155]
      landmarks: true          # read */moving_landmarks, */fixed_landmarks (default false: ignored)
      max_landmarks: 50        # rows of the padded arrays (default: the most in the split)
      landmark_roi_size: 9     # 9x9x9 cubes around the landmarks (default null: no ROI maps)
      landmark_units: physical # mm in the images' LPS frame (default), or voxel (0-based file voxel indices)
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from tfreg.data.errors import DataError
from tfreg.data.landmarks import landmark_path, pair_by_number
from tfreg.data.loaders.base import DataLoader, check_image_shape, check_same_ids
from tfreg.data.sampling import paired_samples
from tfreg.registry import REGISTRY

logger = logging.getLogger(__name__)


@REGISTRY.register_data_loader(name="paired")
class PairedDataLoader(DataLoader):
    """Paired moving/fixed images (and labels).

    Args:
        file_loader: a file-loader class (e.g. ``REGISTRY.get("file_loader_class", "nifti")``).
        data_dir_paths: split folders, each holding the four subfolders or ``.h5`` files.
        labeled: whether to load labels.
        sample_label: ``"sample"`` or ``"all"`` (see :class:`~tfreg.data.loaders.base.DataLoader`).
        seed: sampling seed (None: new order every epoch).
        moving_image_shape: ``(m1, m2, m3)`` (or 2-D) voxels the moving images and labels are resized to.
        fixed_image_shape: ``(f1, f2, f3)`` (or 2-D) for the fixed images and labels.
        landmarks: read ``moving_landmarks/`` and ``fixed_landmarks/`` (see the module docstring); default
            False (those folders are ignored).
        max_landmarks: rows of the padded landmark arrays; None: the largest paired count of the split.
        landmark_roi_size: None, or the odd cube edge (model voxels) of the ROI maps; needs ``landmarks``.
        num_labels: None, or K: label files are integer label maps (0 = background, 1..K) read as K channels
            (:class:`~tfreg.data.loaders.base.DataLoader`).
        landmark_units: ``physical`` (mm, LPS; default) or ``voxel`` (0-based file voxel indices): the units of
            the landmark files' points.
    """

    def __init__(
        self,
        file_loader,
        data_dir_paths: List[str],
        labeled: bool,
        sample_label: Optional[str],
        seed: Optional[int],
        moving_image_shape: Union[Tuple[int, ...], List[int]],
        fixed_image_shape: Union[Tuple[int, ...], List[int]],
        landmarks: bool = False,
        max_landmarks: Optional[int] = None,
        landmark_roi_size: Optional[int] = None,
        num_labels: Optional[int] = None,
        landmark_units: str = "physical",
    ):
        super().__init__(labeled=labeled, num_indices=2, sample_label=sample_label, seed=seed, num_labels=num_labels)
        self.set_landmark_options(landmarks, max_landmarks, landmark_roi_size, landmark_units)
        self._moving_image_shape = check_image_shape(moving_image_shape, "moving_image_shape")
        self._fixed_image_shape = check_image_shape(fixed_image_shape, "fixed_image_shape")
        if len(self._moving_image_shape) != len(self._fixed_image_shape):
            raise ValueError(
                f"moving_image_shape {list(self._moving_image_shape)} and fixed_image_shape "
                f"{list(self._fixed_image_shape)} must have the same number of axes"
            )
        try:
            self.loader_moving_image = file_loader(dir_paths=data_dir_paths, name="moving_images", grouped=False)
            self.loader_fixed_image = file_loader(dir_paths=data_dir_paths, name="fixed_images", grouped=False)
            if self.labeled:
                self.loader_moving_label = file_loader(dir_paths=data_dir_paths, name="moving_labels", grouped=False)
                self.loader_fixed_label = file_loader(dir_paths=data_dir_paths, name="fixed_labels", grouped=False)
            check_same_ids(self.loader_moving_image, self.loader_fixed_image, "moving and fixed images")
            if self.labeled:
                check_same_ids(self.loader_moving_image, self.loader_moving_label, "moving images and labels")
                check_same_ids(self.loader_fixed_image, self.loader_fixed_label, "fixed images and labels")
            self.validate_headers()
            if self.landmarks:
                self._pair_landmarks()
        except BaseException:
            self.close()
            raise
        self.num_images = self.loader_moving_image.get_num_images()
        self._num_samples = self.num_images

    @property
    def moving_image_shape(self) -> Tuple[int, ...]:
        return self._moving_image_shape

    @property
    def fixed_image_shape(self) -> Tuple[int, ...]:
        return self._fixed_image_shape

    def _check_label_counts(self) -> None:
        """Moving and fixed labels of each pair must have the same number of labels."""
        for index in range(self.loader_moving_label.get_num_images()):
            moving = self.label_count(self.loader_moving_label, index)
            fixed = self.label_count(self.loader_fixed_label, index)
            if moving != fixed:
                raise DataError(
                    f"moving label {self.loader_moving_label.get_source(index)} has {moving} label(s) but fixed "
                    f"label {self.loader_fixed_label.get_source(index)} has {fixed}"
                )

    def _pair_landmarks(self) -> None:
        """Read both landmark folders and pair them by number; sets ``max_landmarks`` when it is None."""
        moving = self.read_landmark_files(self.loader_moving_image, "moving_landmarks")
        fixed = self.read_landmark_files(self.loader_fixed_image, "fixed_landmarks")
        ids = self.loader_moving_image.get_data_ids()
        self._landmark_pairs = []
        for data_id, (m_numbers, m_points), (f_numbers, f_points) in zip(ids, moving, fixed):
            m_path, f_path = landmark_path(data_id, "moving_landmarks"), landmark_path(data_id, "fixed_landmarks")
            numbers, m_paired, f_paired = pair_by_number((m_numbers, m_points), (f_numbers, f_points), m_path, f_path)
            unpaired = np.setxor1d(m_numbers, f_numbers)
            if unpaired.size:
                logger.warning(
                    "landmark(s) %s are in only one of %s and %s: dropped (only landmarks in both are paired)",
                    unpaired.tolist(),
                    m_path,
                    f_path,
                )
            self._landmark_pairs.append((m_paired, f_paired, m_path))
        counts = [len(pair[0]) for pair in self._landmark_pairs]
        if self.max_landmarks is None:
            self.max_landmarks = max(counts)
        elif max(counts) > self.max_landmarks:
            worst = int(np.argmax(counts))
            raise DataError(
                f"max_landmarks is {self.max_landmarks} but {self._landmark_pairs[worst][2]} has {counts[worst]} "
                "landmarks paired with its fixed file; raise max_landmarks (or leave it null: the largest count)"
            )

    def file_landmarks(self, moving_index, fixed_index):
        """The paired landmarks of pair ``moving_index`` (== ``fixed_index``), file voxel indices."""
        moving, fixed, _ = self._landmark_pairs[moving_index]
        return moving, fixed

    def sample_index_generator(self):
        """``(i, i, [i])`` for every pair, shuffled by ``seed``."""
        return paired_samples(self.loader_moving_image.get_num_images(), self.seed)

    def file_indices(self, image_indices: Sequence[int]):
        (index,) = image_indices
        return index, index


__all__ = ["PairedDataLoader"]
