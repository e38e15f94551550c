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

Landmarks (``landmarks: true``): each image's landmarks are read from ``landmarks/<id>.csv`` (or ``.txt``)
beside ``images/`` (mm in the image's physical frame, or voxels with ``landmark_units: voxel``;
:mod:`tfreg.data.landmarks`). The fixed landmarks are the image's own ``p``; since moving = image(T(x)), the
same point lies at ``T^-1(p)`` in the moving copy
(:meth:`~tfreg.data.self_pair_transform.PairTransform.inverse_points`, exact for the affine part,
iterated with a local deformation). A moving landmark may leave the grid (the copy shows zeros there);
it is kept. ``max_landmarks`` and ``landmark_roi_size`` (WSSAMNet's ROI targets, built around the moving
landmarks on the moving copy) work as for the ``paired`` loader.

Example::

    dataset:
      type: self_paired
      train: {dir: data/train, format: nifti, labeled: false}
      image_shape: [128, 128, 96]
      max_rotation: 10       # degrees, per axis
      max_scale: 0.1         # scale factors in [0.9, 1.1]
      max_shift: 10          # voxels
      max_displacement: 0    # voxels of smooth local deformation (0: affine only)
      landmarks: false       # true: read landmarks/<id>.csv beside images/
      landmark_roi_size: null  # e.g. 9: ROI cubes around the landmarks (needs landmarks)
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from tfreg.data.errors import DataError
from tfreg.data.loaders.base import DataLoader, SingleShapeMixin, check_image_shape
from tfreg.data.loaders.unpaired import open_unpaired_layout
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
        landmarks, max_landmarks, landmark_roi_size, landmark_units: as for
            :class:`~tfreg.data.loaders.paired.PairedDataLoader`, from ``landmarks/<id>.csv``.
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
        max_rotation: float = 10.0,
        max_scale: float = 0.1,
        max_shift: float = 10.0,
        max_displacement: float = 0.0,
        control_spacing: int = 8,
        landmarks: bool = False,
        max_landmarks: Optional[int] = None,
        landmark_roi_size: Optional[int] = None,
        num_labels: Optional[int] = None,
        landmark_units: str = "physical",
    ):
        self.ranges = PairTransformRanges(
            max_rotation=max_rotation,
            max_scale=max_scale,
            max_shift=max_shift,
            max_displacement=max_displacement,
            control_spacing=control_spacing,
        )
        super().__init__(labeled=labeled, num_indices=3, sample_label=sample_label, seed=seed, num_labels=num_labels)
        self.image_shape = check_image_shape(image_shape, "image_shape")
        self.set_landmark_options(landmarks, max_landmarks, landmark_roi_size, landmark_units)
        try:
            loader_image = open_unpaired_layout(self, file_loader, data_dir_paths)
            if self.landmarks:
                self._image_landmarks = [points for _, points in self.read_landmark_files(loader_image, "landmarks")]
                counts = [len(points) for points in self._image_landmarks]
                if self.max_landmarks is None:
                    self.max_landmarks = max(counts)
                elif max(counts) > self.max_landmarks:
                    worst = int(np.argmax(counts))
                    raise DataError(
                        f"max_landmarks is {self.max_landmarks} but the landmark file of "
                        f"{loader_image.get_source(worst)} has {counts[worst]} landmarks; raise max_landmarks "
                        "(or leave it null: the largest count)"
                    )
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

    def file_landmarks(self, moving_index, fixed_index):
        """The image's landmarks (file voxels) for both roles; :meth:`model_landmarks` moves the moving ones."""
        points = self._image_landmarks[fixed_index]
        return points, points

    def model_landmarks(self, image_indices: Sequence[int]):
        """``(T^-1(p), p)``: the image's landmarks ``p`` (model voxels) and where they lie in the moving copy."""
        _, fixed = super().model_landmarks(image_indices)
        transform = draw_pair_transform(self.image_shape, self.ranges, int(image_indices[1]))
        return transform.inverse_points(fixed), fixed

    def load_resized_sample(self, image_indices: Sequence[int], label_indices: Sequence[int]) -> Dict[str, np.ndarray]:
        """The resized sample with the moving image and label replaced by their transformed copies."""
        sample = super().load_resized_sample(image_indices, label_indices)
        transform = draw_pair_transform(self.image_shape, self.ranges, int(image_indices[1]))
        sample["moving_image"] = transform.apply(sample["fixed_image"])
        if "fixed_label" in sample:  # (L, *shape): label axis first
            sample["moving_label"] = np.stack([transform.apply(label) for label in sample["fixed_label"]])
        return sample


__all__ = ["SelfPairedDataLoader", "DRAW_LIMIT"]
