"""The ``unpaired`` data loader: independent images registered to each other (e.g. CT of different patients).

Layout of each split folder (DeepReg's): ``images`` and, when labeled, ``labels`` (NIfTI folders or
``.h5`` files) with the same IDs. Each epoch shuffles the images with ``seed`` and pairs neighbours
``(s[2k], s[2k+1])``: ``N // 2`` samples, each image used once. With ``pairs="all"`` (the split key
``dataset.<split>.pairs: all``) a pass instead holds every ordered pair of distinct images, ``N (N - 1)``
samples in a fixed order (:func:`tfreg.data.sampling.unpaired_all_pairs`), the evaluation protocol of He,
He and Cao (2022). ``indices`` is ``[moving, fixed, label]``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from tfreg.checks import check_choice
from tfreg.data.loaders.base import DataLoader, SingleShapeMixin, check_image_shape, check_same_ids
from tfreg.data.sampling import (
    PAIRS_OPTIONS,
    unpaired_all_pairs,
    unpaired_all_pairs_num_samples,
    unpaired_num_samples,
    unpaired_samples,
)
from tfreg.registry import REGISTRY


def open_unpaired_layout(loader: DataLoader, file_loader, data_dir_paths: List[str]):
    """Open ``images`` (and ``labels`` when ``loader.labeled``) of the unpaired layout as both the moving and
    the fixed file loaders of ``loader``, check their IDs and headers; returns the image file loader.
    The caller closes ``loader`` on an error."""
    loader_image = file_loader(dir_paths=data_dir_paths, name="images", grouped=False)
    loader.loader_moving_image = loader.loader_fixed_image = loader_image
    if loader.labeled:
        loader_label = file_loader(dir_paths=data_dir_paths, name="labels", grouped=False)
        loader.loader_moving_label = loader.loader_fixed_label = loader_label
        check_same_ids(loader_image, loader_label, "images and labels")
    loader.validate_headers()
    return loader_image


@REGISTRY.register_data_loader(name="unpaired")
class UnpairedDataLoader(SingleShapeMixin, DataLoader):
    """Unpaired images (and labels); moving and fixed both come from ``images``.

    Args:
        file_loader: a file-loader class.
        data_dir_paths: split folders, each holding ``images`` (and ``labels``).
        labeled: whether to load labels.
        sample_label: ``"sample"`` or ``"all"``.
        seed: sampling seed (None: new pairs every epoch).
        image_shape: ``(d1, d2, d3)`` (or 2-D) voxels every image and label is resized to.
        num_labels: None, or K: label files are integer label maps (0 = background, 1..K) read as K channels
            (:class:`~tfreg.data.loaders.base.DataLoader`).
        pairs: ``"sample"`` (DeepReg's shuffled neighbours, ``N // 2`` per epoch) or ``"all"`` (every ordered
            pair ``m != f``, ``N (N - 1)``, fixed order, seed unused); set per split as
            ``dataset.<split>.pairs``.
    """

    def __init__(
        self,
        file_loader,
        data_dir_paths: List[str],
        labeled: bool,
        sample_label: Optional[str],
        seed: Optional[int],
        image_shape: Union[Tuple[int, ...], List[int]],
        num_labels: Optional[int] = None,
        pairs: str = "sample",
    ):
        check_choice(pairs, "dataset.<split>.pairs", PAIRS_OPTIONS)
        super().__init__(labeled=labeled, num_indices=3, sample_label=sample_label, seed=seed, num_labels=num_labels)
        self.pairs = pairs
        self.image_shape = check_image_shape(image_shape, "image_shape")
        try:
            loader_image = open_unpaired_layout(self, file_loader, data_dir_paths)
        except BaseException:
            self.close()
            raise
        self.num_images = loader_image.get_num_images()
        if pairs == "all":
            self._num_samples = unpaired_all_pairs_num_samples(self.num_images)
        else:
            self._num_samples = unpaired_num_samples(self.num_images)

    def sample_index_generator(self):
        """``(s[2k], s[2k+1], [s[2k], s[2k+1]])`` over the images shuffled by ``seed``; with ``pairs="all"``
        every ordered pair ``(m, f, [m, f])``, ``m != f``, moving index major."""
        if self.pairs == "all":
            return unpaired_all_pairs(self.loader_moving_image.get_num_images())
        return unpaired_samples(self.loader_moving_image.get_num_images(), self.seed)

    def file_indices(self, image_indices: Sequence[int]):
        moving, fixed = image_indices
        return moving, fixed


__all__ = ["UnpairedDataLoader", "open_unpaired_layout"]
