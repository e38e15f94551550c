"""The ``grouped`` data loader: images in groups (e.g. the time points of one subject).

Layout (DeepReg's): NIfTI ``images/<group>/<file>`` (and ``labels/`` alike), or HDF5 keys
``group-<G>-<I>`` in ``images.h5`` (and ``labels.h5``). ``indices`` is ``[g1, i1, g2, i2, label]``:
image ``i1`` of group ``g1`` is moving, image ``i2`` of group ``g2`` fixed (group and image indices
count in the loader's sorted order, from 0).

Sampling (DeepReg's, see :func:`tfreg.data.sampling.grouped_samples`): with ``sample_image_in_group``
one pair per group per epoch, intra-group with probability ``intra_group_prob`` (ordered by
``intra_group_option``: ``forward`` moving before fixed, ``backward`` after, ``unconstrained`` either),
else inter-group; without it, every pair (``intra_group_prob`` 0 or 1), shuffled.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from tfreg.data.loaders.base import DataLoader, SingleShapeMixin, check_image_shape, check_same_ids
from tfreg.data.sampling import check_grouped_options, grouped_num_samples, grouped_samples
from tfreg.registry import REGISTRY


@REGISTRY.register_data_loader(name="grouped")
class GroupedDataLoader(SingleShapeMixin, DataLoader):
    """Grouped images (and labels).

    Args:
        file_loader: a file-loader class.
        data_dir_paths: split folders, each holding ``images`` (and ``labels``) in groups.
        labeled: whether to load labels.
        sample_label: ``"sample"`` or ``"all"``.
        seed: sampling seed (None: new draws every epoch).
        image_shape: ``(d1, d2, d3)`` (or 2-D) voxels every image and label is resized to.
        intra_group_prob: probability of an intra-group pair, in [0, 1].
        intra_group_option: ``"forward"``, ``"backward"`` or ``"unconstrained"``.
        sample_image_in_group: one pair per group per epoch (True) or every pair (False).
        num_labels: None, or K: label files are integer label maps (0 = background, 1..K) read as K channels
            (:class:`~tfreg.data.loaders.base.DataLoader`).
    """

    def __init__(
        self,
        file_loader,
        data_dir_paths: List[str],
        labeled: bool,
        sample_label: Optional[str],
        seed: Optional[int],
        image_shape: Union[Tuple[int, ...], List[int]],
        intra_group_prob: float,
        intra_group_option: str,
        sample_image_in_group: bool,
        num_labels: Optional[int] = None,
    ):
        super().__init__(labeled=labeled, num_indices=5, sample_label=sample_label, seed=seed, num_labels=num_labels)
        self.image_shape = check_image_shape(image_shape, "image_shape")
        self.intra_group_prob = intra_group_prob
        self.intra_group_option = intra_group_option
        self.sample_image_in_group = sample_image_in_group
        try:
            loader_image = file_loader(dir_paths=data_dir_paths, name="images", grouped=True)
            self.loader_moving_image = self.loader_fixed_image = loader_image
            if self.labeled:
                loader_label = file_loader(dir_paths=data_dir_paths, name="labels", grouped=True)
                self.loader_moving_label = self.loader_fixed_label = loader_label
                check_same_ids(loader_image, loader_label, "images and labels")
            self.num_groups = loader_image.get_num_groups()
            self.num_images_per_group = loader_image.get_num_images_per_group()
            check_grouped_options(
                self.num_images_per_group, intra_group_prob, intra_group_option, sample_image_in_group
            )
            self.validate_headers()
        except BaseException:
            self.close()
            raise
        self._num_samples = grouped_num_samples(
            self.num_images_per_group, intra_group_prob, intra_group_option, sample_image_in_group
        )

    def sample_index_generator(self):
        """``((g1, i1), (g2, i2), [g1, i1, g2, i2])`` following DeepReg's grouped sampling."""
        return grouped_samples(
            self.num_images_per_group,
            self.intra_group_prob,
            self.intra_group_option,
            self.sample_image_in_group,
            self.seed,
        )

    def file_indices(self, image_indices: Sequence[int]):
        g1, i1, g2, i2 = image_indices
        return (g1, i1), (g2, i2)


__all__ = ["GroupedDataLoader"]
