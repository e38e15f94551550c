"""The ``paired`` data loader: moving/fixed images that belong together (e.g. MR and ultrasound of one patient).

Layout of each split folder (DeepReg's): ``moving_images``, ``fixed_images`` and, when labeled,
``moving_labels``, ``fixed_labels`` (NIfTI folders or ``.h5`` files). The four must hold the same IDs.
One sample per pair per epoch, in an order shuffled by ``seed``; ``indices`` is ``[i, label]``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from tfreg.data.errors import DataError
from tfreg.data.loaders.base import DataLoader, check_image_shape, check_same_ids
from tfreg.data.sampling import paired_samples
from tfreg.registry import REGISTRY


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
    ):
        super().__init__(labeled=labeled, num_indices=2, sample_label=sample_label, seed=seed)
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

    def sample_index_generator(self):
        """``(i, i, [i])`` for every pair, shuffled by ``seed``."""
        return paired_samples(self.loader_moving_image.get_num_images(), self.seed)

    def file_indices(self, image_indices: Sequence[int]):
        (index,) = image_indices
        return index, index


__all__ = ["PairedDataLoader"]
