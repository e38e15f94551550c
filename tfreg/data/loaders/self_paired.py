"""The ``self_paired`` data loader: each image paired with a randomly transformed copy of itself.

For self-supervised pre-training of a registration network without pairs (WSSAMNet's affine
pre-training; see :mod:`tfreg.data.self_pair_transform`). The layout is the unpaired one (DeepReg's):
``images`` and, when labeled, ``labels`` with the same IDs. Each epoch yields every image once:

* fixed = the image (resized to ``image_shape``);
* moving = its copy under a random transform ``T`` drawn on the resized grid (the labels get the same
  ``T``).

``indices`` is ``[image, draw, label]``, where ``draw`` is the seed of the transform (an integer below
2^24, exact in float32). A sample, and a prediction's ``pair_<image>_<draw>`` folder, can therefore be
reproduced. With ``seed`` set (valid and test default to 0), the draws repeat every epoch. With ``seed:
null`` (train's default), every epoch draws new ones.

Example::

    dataset:
      type: self_paired
      train: {dir: data/train, format: nifti, labeled: false}
      image_shape: [128, 128, 96]
      max_rotation: 10       # degrees, per axis
      max_scale: 0.1         # scale factors in [0.9, 1.1]
      max_shift: 10          # voxels
      max_displacement: 0    # voxels of smooth local deformation (0: affine only)
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from tfreg.data.loaders.base import DataLoader, SingleShapeMixin, check_image_shape, check_same_ids
from tfreg.data.self_pair_transform import PairTransformRanges, draw_pair_transform
from tfreg.registry import REGISTRY

#: draws are below 2**24 so that float32 ``indices`` hold them exactly
DRAW_LIMIT = 2**24


@REGISTRY.register_data_loader(name="self_paired")
class SelfPairedDataLoader(SingleShapeMixin, DataLoader):
    """Every image paired with a random transform of itself (moving = transformed copy, fixed = image).

    Args:
        file_loader: a file-loader class.
        data_dir_paths: split folders, each holding ``images`` (and ``labels``).
        labeled: whether to load labels.
        sample_label: ``"sample"`` or ``"all"``.
        seed: seed of the draws (None: new transforms every epoch).
        image_shape: ``(d1, d2, d3)`` (or 2-D) voxels every image and label is resized to.
        max_rotation, max_scale, max_shift, max_displacement, control_spacing: the transform's ranges,
            see :class:`tfreg.data.self_pair_transform.PairTransformRanges` (degrees, fraction, voxels).
    """

    def __init__(
        self,
        file_loader,
        data_dir_paths: List[str],
        labeled: bool,
        sample_label: Optional[str],
        seed: Optional[int],
        image_shape: Union[Tuple[int, ...], List[int]],
        max_rotation: float = 10.0,
        max_scale: float = 0.1,
        max_shift: float = 10.0,
        max_displacement: float = 0.0,
        control_spacing: int = 8,
    ):
        self.ranges = PairTransformRanges(
            max_rotation=max_rotation,
            max_scale=max_scale,
            max_shift=max_shift,
            max_displacement=max_displacement,
            control_spacing=control_spacing,
        )
        super().__init__(labeled=labeled, num_indices=3, sample_label=sample_label, seed=seed)
        self.image_shape = check_image_shape(image_shape, "image_shape")
        try:
            loader_image = file_loader(dir_paths=data_dir_paths, name="images", grouped=False)
            self.loader_moving_image = self.loader_fixed_image = loader_image
            if self.labeled:
                loader_label = file_loader(dir_paths=data_dir_paths, name="labels", grouped=False)
                self.loader_moving_label = self.loader_fixed_label = loader_label
                check_same_ids(loader_image, loader_label, "images and labels")
            self.validate_headers()
        except BaseException:
            self.close()
            raise
        self.num_images = loader_image.get_num_images()
        self._num_samples = self.num_images

    def sample_index_generator(self):
        """``(i, i, [i, draw_i])`` for every image ``i`` in order (the pipeline shuffles training data)."""
        rng = np.random.default_rng(self.seed)
        for image in range(self.loader_moving_image.get_num_images()):
            draw = int(rng.integers(DRAW_LIMIT))
            yield image, image, [image, draw]

    def file_indices(self, image_indices: Sequence[int]):
        image, _ = image_indices
        return image, image

    def load_resized_sample(self, image_indices: Sequence[int], label_indices: Sequence[int]) -> Dict[str, np.ndarray]:
        """The resized sample with the moving image and label replaced by their transformed copies."""
        sample = super().load_resized_sample(image_indices, label_indices)
        transform = draw_pair_transform(self.image_shape, self.ranges, int(image_indices[1]))
        sample["moving_image"] = transform.apply(sample["fixed_image"])
        if "fixed_label" in sample:  # (L, *shape): label axis first
            sample["moving_label"] = np.stack([transform.apply(label) for label in sample["fixed_label"]])
        return sample


__all__ = ["SelfPairedDataLoader", "DRAW_LIMIT"]
