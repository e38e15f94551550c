"""The data-loader base class: sampling, loading and checking samples; the tf.data hand-off.

A data loader (DeepReg's ``DataLoader``) owns up to four file loaders (``loader_moving_image``,
``loader_fixed_image``, ``loader_moving_label``, ``loader_fixed_label``; unpaired and grouped data use
one image and one label loader for both roles) and decides which images form each sample.

Work is split so that each part can be tested on its own:

- :meth:`DataLoader.sample_index_generator` (subclasses): which image pairs, in which order; pure
  Python, DeepReg's exact random-call sequence (:mod:`tfreg.data.sampling`);
- :meth:`DataLoader.sample_generator`: adds the label indices (``sample``: one random label per pair,
  ``all``: every label); still pure Python, using label counts read from the file headers;
- :meth:`DataLoader.load_sample`: reads, checks and normalises one sample's arrays (NumPy);
- :meth:`DataLoader.get_dataset_and_preprocess`: the ``tf.data`` pipeline (:mod:`tfreg.data.pipeline`).

Landmarks (loaders that support them, ``landmarks: true``): :meth:`DataLoader.set_landmark_options`,
:meth:`DataLoader.read_landmark_files` (CSV beside the images, mm -> file voxels, checked when the loader
is built), :meth:`DataLoader.model_landmarks` (-> voxels of the resized grids) and
:meth:`DataLoader.landmark_arrays` (padded arrays, mask, ROI maps) add entries to each sample;
:meth:`DataLoader.sample_spec` lists every entry's shape for the pipeline. See docs/landmarks.md.

Constructing a loader checks everything the headers tell, before any training starts: IDs of
moving/fixed images and of images/labels, the number of axes of every file, label counts. Voxel values
(non-finite values, labels outside [0, 1] or, with ``num_labels``, integer label maps with values outside
``0..num_labels``, corrupt data) are checked when a file is loaded, or for all
files at once by :meth:`DataLoader.check_all_files`. Every error names the file.

TensorFlow is imported only by :meth:`get_dataset` / :meth:`get_dataset_and_preprocess`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders.base import FileLoader, format_list
from tfreg.data.geometry import ImageGeometry
from tfreg.data.landmark_roi import check_roi_size, landmark_roi
from tfreg.data.landmarks import (
    LANDMARK_SUFFIXES,
    check_landmark_units,
    file_points_to_index,
    index_to_model,
    landmark_path,
    outside_grid,
    pad_landmarks,
    read_numbered_landmarks,
)
from tfreg.data.preprocess import (
    image_spatial_shape,
    label_map_spatial_shape,
    label_spatial_shape_and_count,
    load_image,
    load_label_channels,
    resize,
)
from tfreg.data.sampling import SAMPLE_LABEL_OPTIONS, label_indices, label_rng, steps_per_epoch

logger = logging.getLogger(__name__)

#: Image shapes may be 3-D (DeepReg) or 2-D.
IMAGE_NDIMS = (2, 3)


def check_image_shape(shape: Any, key: str) -> Tuple[int, ...]:
    """``shape`` as a tuple of 2 or 3 positive ints, or ValueError naming the config ``key``."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise ValueError(f"{key} must be a list of 3 (or 2) positive ints, got {shape!r}")
    dims = tuple(shape)
    if len(dims) not in IMAGE_NDIMS or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d > 0 for d in dims
    ):
        raise ValueError(f"{key} must be a list of 3 (or 2) positive ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def check_same_ids(loader_a: FileLoader, loader_b: FileLoader, what: str) -> None:
    """DataError unless two file loaders hold the same data IDs in the same order.

    The message lists IDs found in only one of them (e.g. a fixed image without its moving image).
    """
    ids_a, ids_b = loader_a.get_data_ids(), loader_b.get_data_ids()
    if ids_a == ids_b:
        return
    set_a, set_b = set(ids_a), set(ids_b)
    only_a = [_id_text(i) for i in ids_a if i not in set_b]
    only_b = [_id_text(i) for i in ids_b if i not in set_a]
    where_a = f"{loader_a.name!r} in {loader_a.dir_paths}"
    where_b = f"{loader_b.name!r} in {loader_b.dir_paths}"
    raise DataError(
        f"{what} do not match: {len(ids_a)} {where_a} vs {len(ids_b)} {where_b}; "
        f"only in {loader_a.name!r}: {format_list(only_a)}; only in {loader_b.name!r}: {format_list(only_b)}"
    )


def _id_text(data_id: Any) -> str:
    """A data ID for messages: its parts after the folder, joined (``case000001``, ``group1/case3``)."""
    if isinstance(data_id, tuple) and len(data_id) > 1:
        return "/".join(str(part) for part in data_id[1:])
    return str(data_id)


class DataLoader:
    """Samples of moving/fixed images (and labels) for registration; DeepReg's interface.

    Args:
        labeled: whether to load labels (None means False, as in DeepReg).
        num_indices: length of a sample's ``indices`` (image indices plus the label index).
        sample_label: ``"sample"`` (one random label per image pair per epoch), ``"all"`` (one sample
            per label) or ``"stack"`` (tfreg: one sample per pair holding every label, ``(*S, L)``, for
            losses that need all structures at once, e.g. a rigidity penalty over all bones; every label file
            must then have the same ``L``); needed when ``labeled``.
        seed: seed of the sampling order (None: a new order every epoch).
        num_labels: None (DeepReg's layout: label files hold one [0, 1] mask per channel) or ``K``: every label
            file is an integer label map (0 = background, ``1..K`` structures), read as ``K`` channels, channel
            ``k - 1`` = (map == k) (config key ``dataset.num_labels``).
    """

    def __init__(
        self,
        labeled: Optional[bool],
        num_indices: int,
        sample_label: Optional[str],
        seed: Optional[int],
        num_labels: Optional[int] = None,
    ):
        if labeled not in (True, False, None):
            raise ValueError(f"labeled must be true or false, got {labeled!r}")
        if sample_label not in SAMPLE_LABEL_OPTIONS + (None,):
            raise ValueError(f"sample_label must be one of {list(SAMPLE_LABEL_OPTIONS)}, got {sample_label!r}")
        if labeled and sample_label is None:
            raise ValueError(f"sample_label must be one of {list(SAMPLE_LABEL_OPTIONS)} for labeled data, got None")
        if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or null, got {seed!r}")
        if num_labels is not None and (
            isinstance(num_labels, (bool, np.bool_)) or not isinstance(num_labels, (int, np.integer)) or num_labels < 1
        ):
            raise ValueError(
                f"num_labels must be a positive int (the structures of integer label maps, 1..K) or null, "
                f"got {num_labels!r}"
            )
        #: K of integer label maps (``dataset.num_labels``), None for DeepReg's one-mask-per-channel files
        self.label_map_num_labels = None if num_labels is None else int(num_labels)
        self.labeled = bool(labeled)
        self.num_indices = int(num_indices)
        self.sample_label = sample_label
        self.seed = None if seed is None else int(seed)
        self.loader_moving_image: Optional[FileLoader] = None
        self.loader_fixed_image: Optional[FileLoader] = None
        self.loader_moving_label: Optional[FileLoader] = None
        self.loader_fixed_label: Optional[FileLoader] = None
        self._num_samples: Optional[int] = None
        #: landmark options (see :meth:`set_landmark_options`); off unless a subclass turns them on
        self.landmarks = False
        self.max_landmarks: Optional[int] = None
        self.landmark_roi_size: Optional[int] = None
        self.landmark_units = "physical"

    # ------------------------------------------------------------------ shapes and counts
    @property
    def moving_image_shape(self) -> Tuple[int, ...]:
        """Configured moving image shape (voxels); every moving image and label is resized to it."""
        raise NotImplementedError

    @property
    def fixed_image_shape(self) -> Tuple[int, ...]:
        """Configured fixed image shape (voxels)."""
        raise NotImplementedError

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes (3, or 2 for 2-D data)."""
        return len(self.moving_image_shape)

    @property
    def num_samples(self) -> int:
        """Image pairs per epoch, as DeepReg counted them (with ``sample_label: all`` each pair gives one
        sample per label, so an epoch yields more elements than this)."""
        return self._num_samples

    def steps_per_epoch(self, batch_size: int) -> int:
        """DeepReg's ``max(num_samples // batch_size, 1)``."""
        return steps_per_epoch(self.num_samples, batch_size)

    # ------------------------------------------------------------------ for subclasses
    def sample_index_generator(self) -> Iterator[Tuple[Any, Any, List[int]]]:
        """Yield ``(moving_index, fixed_index, image_indices)`` for one epoch (see :mod:`tfreg.data.sampling`)."""
        raise NotImplementedError

    def file_indices(self, image_indices: Sequence[int]) -> Tuple[Any, Any]:
        """``(moving_index, fixed_index)`` for the file loaders, from a sample's image indices."""
        raise NotImplementedError

    # ------------------------------------------------------------------ construction-time checks
    def _file_loaders(self) -> List[FileLoader]:
        """The distinct file loaders in use (unpaired/grouped share one loader for moving and fixed)."""
        loaders = []
        for loader in (
            self.loader_moving_image,
            self.loader_fixed_image,
            self.loader_moving_label,
            self.loader_fixed_label,
        ):
            if loader is not None and all(loader is not seen for seen in loaders):
                loaders.append(loader)
        return loaders

    def _indices_of(self, loader: FileLoader) -> List[Any]:
        """Every index ``loader.get_data`` accepts."""
        if loader.grouped:
            return [(g, i) for g, n in enumerate(loader.get_num_images_per_group()) for i in range(n)]
        return list(range(loader.get_num_images()))

    def validate_headers(self) -> None:
        """Check the number of axes of every file, and label counts, from the headers.

        Moving and fixed labels of a sample must have the same number of labels. For unpaired and grouped
        data, where any two images may be paired, every label file must have the same count (DeepReg
        failed only when a mismatched pair happened to be drawn). Subclasses check IDs before this.
        """
        ndim = self.spatial_ndim
        image_loaders = [self.loader_moving_image] + (
            [self.loader_fixed_image] if self.loader_fixed_image is not self.loader_moving_image else []
        )
        for loader in image_loaders:
            for index in self._indices_of(loader):
                image_spatial_shape(loader.get_shape(index), ndim, loader.get_source(index))
        if not self.labeled:
            return
        for image_loader, label_loader in (
            (self.loader_moving_image, self.loader_moving_label),
            (self.loader_fixed_image, self.loader_fixed_label),
        ):
            for index in self._indices_of(label_loader):
                spatial, _ = self.label_shape_and_count(label_loader.get_shape(index), label_loader.get_source(index))
                image_spatial = image_spatial_shape(image_loader.get_shape(index), ndim, image_loader.get_source(index))
                if spatial != image_spatial:
                    # DeepReg only warned: both are resized to the configured shape anyway.
                    logger.warning(
                        "label %s has spatial shape %s but its image %s has %s",
                        label_loader.get_source(index),
                        spatial,
                        image_loader.get_source(index),
                        image_spatial,
                    )
        self._check_label_counts()
        if self.sample_label == "stack":
            self.stacked_label_count()

    def stacked_label_count(self) -> int:
        """``L``, the label channels of every stacked sample (``sample_label: stack``), from the headers.

        Raises:
            DataError: label files with different counts (a batch of stacked labels needs one ``L``), naming
                files of each count.
        """
        counts: Dict[int, List[str]] = {}
        for loader in {id(l): l for l in (self.loader_moving_label, self.loader_fixed_label) if l}.values():
            for index in self._indices_of(loader):
                counts.setdefault(self.label_count(loader, index), []).append(loader.get_source(index))
        if len(counts) != 1:
            detail = "; ".join(f"{n} label(s): {format_list(sources, 3)}" for n, sources in sorted(counts.items()))
            raise DataError(
                f"sample_label: stack puts every label channel of a pair in one sample, so every label file must "
                f"have the same number of labels: {detail or 'no label files'}"
            )
        return next(iter(counts))

    def _check_label_counts(self) -> None:
        """Paired data: per pair. Shared label loader: all equal. Overridden where needed."""
        loader = self.loader_moving_label
        counts: Dict[int, List[str]] = {}
        for index in self._indices_of(loader):
            counts.setdefault(self.label_count(loader, index), []).append(loader.get_source(index))
        if len(counts) > 1:
            detail = "; ".join(f"{n} label(s): {format_list(sources, 3)}" for n, sources in sorted(counts.items()))
            raise DataError(
                f"label files in {loader.dir_paths} ({loader.name!r}) have different numbers of labels, but any "
                f"two images may be paired, so moving and fixed label counts would differ: {detail}"
            )

    def label_shape_and_count(self, shape: Sequence[int], source: str) -> Tuple[Tuple[int, ...], int]:
        """``(spatial shape, label channels)`` of a label file of ``shape``: from its last axis (DeepReg's
        layout), or ``num_labels`` for integer label maps (which must have one channel)."""
        if self.label_map_num_labels is None:
            return label_spatial_shape_and_count(shape, self.spatial_ndim, source)
        k = self.label_map_num_labels
        return label_map_spatial_shape(shape, self.spatial_ndim, source, k), k

    def label_count(self, loader: FileLoader, index: Any) -> int:
        """Number of labels in a label file, from its header (``num_labels`` for integer label maps)."""
        return self.label_shape_and_count(loader.get_shape(index), loader.get_source(index))[1]

    @property
    def num_labels(self) -> Optional[int]:
        """The most label channels of any label file (moving and fixed), from the headers; None when
        unlabeled. Models whose outputs are per label (a segmentation head) are sized and checked with it."""
        if not self.labeled:
            return None
        counts = [
            self.label_count(loader, index)
            for loader in {id(l): l for l in (self.loader_moving_label, self.loader_fixed_label) if l}.values()
            for index in self._indices_of(loader)
        ]
        return max(counts) if counts else None

    def check_all_files(self) -> None:
        """Read every file once and run the load-time checks (corrupt data, non-finite voxels, label values).

        Raises the first :class:`DataError`, naming the file. Optional: training finds the same problems
        when it reaches the file, but this finds them before the first step.
        """
        ndim = self.spatial_ndim
        for loader in self._file_loaders():
            is_label = loader is self.loader_moving_label or loader is self.loader_fixed_label
            for index in self._indices_of(loader):
                array, source = loader.get_data(index), loader.get_source(index)
                if is_label:
                    load_label_channels(array, ndim, source, [], self.label_map_num_labels)
                else:
                    load_image(array, ndim, source)

    # ------------------------------------------------------------------ landmarks
    def set_landmark_options(
        self, landmarks: Any, max_landmarks: Any, landmark_roi_size: Any, landmark_units: Any = "physical"
    ) -> None:
        """Check and store the landmark options (dataset keys of the same names).

        Args:
            landmarks: true to read the landmark files beside the images (default false: landmark folders
                are ignored).
            max_landmarks: rows of the padded landmark arrays; None: the largest count in this split.
            landmark_roi_size: None, or the edge (odd, model-grid voxels) of the cubes of the ROI maps
                ``moving_roi`` / ``fixed_roi`` (WSSAMNet: 9); needs ``landmarks``.
            landmark_units: ``physical`` (mm in the image's LPS frame, the default) or ``voxel`` (0-based
                continuous voxel indices of the image file's array axes), see :mod:`tfreg.data.landmarks`.

        Raises:
            ValueError: naming the key, for a value of the wrong type or ROI maps without landmarks.
        """
        if landmarks not in (True, False, None):
            raise ValueError(f"landmarks must be true or false, got {landmarks!r}")
        if max_landmarks is not None and (
            isinstance(max_landmarks, (bool, np.bool_))
            or not isinstance(max_landmarks, (int, np.integer))
            or max_landmarks < 1
        ):
            raise ValueError(f"max_landmarks must be a positive int or null, got {max_landmarks!r}")
        if landmark_roi_size is not None:
            check_roi_size(landmark_roi_size, "landmark_roi_size")
            if not landmarks:
                raise ValueError(
                    f"landmark_roi_size {landmark_roi_size!r} asks for ROI maps around landmarks, which needs "
                    "landmarks: true"
                )
        self.landmark_units = check_landmark_units(landmark_units)
        self.landmarks = bool(landmarks)
        self.max_landmarks = None if max_landmarks is None else int(max_landmarks)
        self.landmark_roi_size = None if landmark_roi_size is None else int(landmark_roi_size)

    def read_landmark_files(self, loader: FileLoader, folder: str) -> List[Tuple[np.ndarray, np.ndarray]]:
        """The landmarks of every image of ``loader``, file voxel indices, from ``<dir>/<folder>/<id>.csv`` or ``.txt``.

        Each file's points are in :attr:`landmark_units`: mm in the image's LPS physical frame, converted
        with the image's geometry (:func:`tfreg.data.landmarks.physical_to_index`), or voxel indices.

        Returns:
            per data index, ``(numbers (N,) int64, indices (N, ndim) float64)``.

        Raises:
            DataNotFoundError: naming the expected file, when an image has no landmark file.
            DataError: naming the file, for a malformed file, points of the wrong dimension, or a landmark
                outside its image's extent (which usually means the points are not in this image's
                physical frame).
        """
        ndim = self.spatial_ndim
        table = []
        for index, data_id in enumerate(loader.get_data_ids()):
            path = landmark_path(data_id, folder)
            source = loader.get_source(index)
            if not os.path.isfile(path):
                raise DataNotFoundError(
                    f"landmarks: true, but the image {source} has no landmark file: expected {path} "
                    f"(a {folder}/ folder beside the images, one <image id>{' or <image id>'.join(LANDMARK_SUFFIXES)} "
                    "per image)"
                )
            numbers, points = read_numbered_landmarks(path)
            if points.shape[1] != ndim:
                raise DataError(
                    f"landmark file {path} has {points.shape[1]} coordinates per point but the images are {ndim}-D"
                )
            shape = image_spatial_shape(loader.get_shape(index), ndim, source)
            indices = file_points_to_index(points, self.landmark_units, loader.get_geometry(index).with_ndim(ndim))
            outside = outside_grid(indices, shape)
            if outside.any():
                where = "; ".join(
                    f"landmark {n} at voxel {np.round(v, 2).tolist()}"
                    for n, v in zip(numbers[outside], indices[outside])
                )
                expected = (
                    "0-based voxel indices along the image array's axes (landmark_units: voxel)"
                    if self.landmark_units == "voxel"
                    else "physical points (mm) in the image's LPS frame (SimpleITK's TransformIndexToPhysicalPoint; "
                    "set landmark_units: voxel for voxel indices)"
                )
                raise DataError(
                    f"landmark file {path}: {where} lie(s) outside the image {source} (shape {list(shape)}); "
                    f"landmarks must be {expected}"
                )
            table.append((numbers, indices))
        return table

    def file_landmarks(self, moving_index: Any, fixed_index: Any) -> Tuple[np.ndarray, np.ndarray]:
        """``(moving (K, ndim), fixed (K, ndim))`` corresponding landmarks of a pair, file voxel indices.

        Implemented by loaders that support ``landmarks: true``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not read landmarks")

    def model_landmarks(self, image_indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """``(moving (K, ndim), fixed (K, ndim))`` landmarks of a sample in model voxels (resized grids).

        File indices are mapped to the grids of ``moving_image_shape`` / ``fixed_image_shape`` with the
        half-pixel convention of the image resize (:func:`tfreg.data.landmarks.index_to_model`).
        """
        ndim = self.spatial_ndim
        moving_index, fixed_index = self.file_indices([int(i) for i in image_indices])
        moving, fixed = self.file_landmarks(moving_index, fixed_index)
        out = []
        for points, loader, index, shape in (
            (moving, self.loader_moving_image, moving_index, self.moving_image_shape),
            (fixed, self.loader_fixed_image, fixed_index, self.fixed_image_shape),
        ):
            file_shape = image_spatial_shape(loader.get_shape(index), ndim, loader.get_source(index))
            out.append(index_to_model(points, file_shape, shape))
        return out[0], out[1]

    def landmark_arrays(self, moving: np.ndarray, fixed: np.ndarray) -> Dict[str, np.ndarray]:
        """The landmark entries of a sample from its ``(K, ndim)`` model-voxel landmarks.

        Returns:
            float32 ``moving_landmarks`` / ``fixed_landmarks`` ``(max_landmarks, ndim)`` (rows past K are
            0), ``landmark_mask`` ``(max_landmarks,)`` (1 for the K landmarks, 0 for padding) and, with
            ``landmark_roi_size``, ``moving_roi`` ``(*moving_image_shape)`` / ``fixed_roi``
            ``(*fixed_image_shape)`` (:func:`tfreg.data.landmark_roi.landmark_roi`).
        """
        moving_padded, mask = pad_landmarks(moving, self.max_landmarks)
        fixed_padded, _ = pad_landmarks(fixed, self.max_landmarks)
        out = {"moving_landmarks": moving_padded, "fixed_landmarks": fixed_padded, "landmark_mask": mask}
        if self.landmark_roi_size is not None:
            out["moving_roi"] = landmark_roi(moving, self.moving_image_shape, self.landmark_roi_size)
            out["fixed_roi"] = landmark_roi(fixed, self.fixed_image_shape, self.landmark_roi_size)
        return out

    def sample_spec(self) -> Dict[str, Tuple[Optional[int], ...]]:
        """Shape of every array :meth:`load_resized_sample` returns, by key, in order.

        Labels have a leading label axis of unknown size (None), or with ``sample_label: stack`` of size
        :meth:`stacked_label_count`; the others are per sample.
        """
        ndim = self.spatial_ndim
        moving, fixed = tuple(self.moving_image_shape), tuple(self.fixed_image_shape)
        spec: Dict[str, Tuple[Optional[int], ...]] = {"moving_image": moving, "fixed_image": fixed}
        if self.labeled:
            count = self.stacked_label_count() if self.sample_label == "stack" else None
            spec.update(moving_label=(count,) + moving, fixed_label=(count,) + fixed)
        if self.landmarks:
            rows = self.max_landmarks
            spec.update(moving_landmarks=(rows, ndim), fixed_landmarks=(rows, ndim), landmark_mask=(rows,))
            if self.landmark_roi_size is not None:
                spec.update(moving_roi=moving, fixed_roi=fixed)
        return spec

    # ------------------------------------------------------------------ samples (pure Python / NumPy)
    def sample_generator(self) -> Iterator[Tuple[List[int], List[int]]]:
        """Yield ``(image_indices, label_indices)`` for one epoch; pure Python, reproducible with a seed.

        ``label_indices`` is ``[]`` for unlabeled data, one random label (``sample``) or every label
        (``all``, ``stack``) otherwise. Each label index makes one sample, in that order, except with
        ``stack``, where they make one sample together.
        """
        rnd = label_rng(self.seed)
        for moving_index, _, image_indices in self.sample_index_generator():
            if not self.labeled:
                yield list(image_indices), []
                continue
            count = self.label_count(self.loader_moving_label, moving_index)
            yield list(image_indices), label_indices(count, self.sample_label, rnd)

    def load_sample(self, image_indices: Sequence[int], label_indices: Sequence[int]) -> Dict[str, np.ndarray]:
        """The arrays of one image pair, checked and normalised, before resizing.

        Returns:
            ``moving_image`` ``(*m)`` and ``fixed_image`` ``(*f)`` float32 in [0, 1] (file shapes), and when
            labeled ``moving_label`` ``(L, *m)`` / ``fixed_label`` ``(L, *f)``: the ``L = len(label_indices)``
            requested labels, label axis first.

        Raises:
            DataError: naming the file, for unreadable data, non-finite voxels, labels outside [0, 1]
                (integer label maps: values that are not integers in ``0..num_labels``), or moving/fixed label
                counts that differ.
        """
        ndim = self.spatial_ndim
        moving_index, fixed_index = self.file_indices([int(i) for i in image_indices])
        sample = {
            "moving_image": load_image(
                self.loader_moving_image.get_data(moving_index), ndim, self.loader_moving_image.get_source(moving_index)
            ),
            "fixed_image": load_image(
                self.loader_fixed_image.get_data(fixed_index), ndim, self.loader_fixed_image.get_source(fixed_index)
            ),
        }
        if self.labeled:
            channels = [int(c) for c in label_indices]
            moving_source = self.loader_moving_label.get_source(moving_index)
            fixed_source = self.loader_fixed_label.get_source(fixed_index)
            moving_label = self.loader_moving_label.get_data(moving_index)
            fixed_label = self.loader_fixed_label.get_data(fixed_index)
            moving_count = self.label_shape_and_count(moving_label.shape, moving_source)[1]
            fixed_count = self.label_shape_and_count(fixed_label.shape, fixed_source)[1]
            if moving_count != fixed_count:
                raise DataError(
                    f"moving label {moving_source} has {moving_count} label(s) but fixed label "
                    f"{fixed_source} has {fixed_count}"
                )
            k = self.label_map_num_labels
            sample["moving_label"] = load_label_channels(moving_label, ndim, moving_source, channels, k)
            sample["fixed_label"] = load_label_channels(fixed_label, ndim, fixed_source, channels, k)
        return sample

    def load_resized_sample(self, image_indices: Sequence[int], label_indices: Sequence[int]) -> Dict[str, np.ndarray]:
        """:meth:`load_sample` resized to the configured shapes (what the pipeline feeds the model).

        Returns:
            float32 ``moving_image`` ``(*moving_image_shape)``, ``fixed_image`` ``(*fixed_image_shape)``,
            when labeled ``moving_label`` ``(L, *moving_image_shape)``, ``fixed_label``
            ``(L, *fixed_image_shape)``, and with ``landmarks`` the entries of :meth:`landmark_arrays`
            (landmarks in model voxels). Keys and shapes: :meth:`sample_spec`. Plain NumPy: usable
            without ``tf.data``.
        """
        sample = self.load_sample(image_indices, label_indices)
        out = {}
        for key, array in sample.items():
            shape = self.moving_image_shape if key.startswith("moving") else self.fixed_image_shape
            if key.endswith("image"):
                out[key] = resize(array[None], shape)[0]
            else:
                out[key] = resize(array, shape)
        if self.landmarks:
            out.update(self.landmark_arrays(*self.model_landmarks(image_indices)))
        return out

    # ------------------------------------------------------------------ outputs in physical space
    def _image_indices_of(self, indices: Sequence[float]) -> List[int]:
        values = np.asarray(indices, dtype=np.float64).ravel()
        if values.size not in (self.num_indices, self.num_indices - 1):
            raise ValueError(f"expected {self.num_indices} indices (with the label index), got {values.tolist()}")
        return [int(round(v)) for v in values[: self.num_indices - 1]]

    def get_geometry(self, indices: Sequence[float], model_space: bool = True) -> Tuple[ImageGeometry, ImageGeometry]:
        """``(moving_geometry, fixed_geometry)`` of the sample with these ``indices`` (one row of a batch).

        Args:
            indices: the sample's ``indices`` (with or without the trailing label index).
            model_space: True (default) gives the geometry of the *resized* arrays the model sees
                (``moving_image_shape``/``fixed_image_shape`` voxels covering the file's physical extent,
                see :meth:`ImageGeometry.resized`), for writing predictions; False gives the files' own.
        """
        moving_index, fixed_index = self.file_indices(self._image_indices_of(indices))
        out = []
        for loader, index, shape in (
            (self.loader_moving_image, moving_index, self.moving_image_shape),
            (self.loader_fixed_image, fixed_index, self.fixed_image_shape),
        ):
            geometry = loader.get_geometry(index).with_ndim(len(shape))
            if model_space:
                file_shape = image_spatial_shape(loader.get_shape(index), len(shape), loader.get_source(index))
                geometry = geometry.resized(file_shape, shape)
            out.append(geometry)
        return out[0], out[1]

    def get_sources(self, indices: Sequence[float]) -> Tuple[str, str]:
        """``(moving_image_file, fixed_image_file)`` of the sample with these ``indices``."""
        moving_index, fixed_index = self.file_indices(self._image_indices_of(indices))
        return self.loader_moving_image.get_source(moving_index), self.loader_fixed_image.get_source(fixed_index)

    # ------------------------------------------------------------------ tf.data
    def get_dataset(self, num_parallel_calls: int = -1):
        """``tf.data.Dataset`` of single samples for one epoch, loaded and resized, before shuffling/batching."""
        # Imported here, not at the top, only so that `import tfreg.data` does not import TensorFlow
        # (tfreg_evaluate reads files through tfreg.data without it); pipeline does not import this module.
        from tfreg.data.pipeline import sample_dataset

        return sample_dataset(self, num_parallel_calls=num_parallel_calls)

    def get_dataset_and_preprocess(
        self,
        training: bool,
        batch_size: int,
        repeat: bool,
        shuffle_buffer_num_batch: int,
        data_augmentation=None,
        num_parallel_calls: int = -1,
        registry=None,
    ):
        """The batched ``tf.data.Dataset`` (DeepReg's signature; see :func:`tfreg.data.pipeline.build_dataset`).

        ``registry`` (tfreg's addition) is where augmentations are looked up; default ``REGISTRY``.
        """
        from tfreg.data.pipeline import build_dataset  # TensorFlow only when a dataset is built (see get_dataset)

        return build_dataset(
            self,
            training=training,
            batch_size=batch_size,
            repeat=repeat,
            shuffle_buffer_num_batch=shuffle_buffer_num_batch,
            data_augmentation=data_augmentation,
            num_parallel_calls=num_parallel_calls,
            registry=registry,
        )

    def close(self) -> None:
        """Close the file loaders (HDF5 handles)."""
        for loader in self._file_loaders():
            loader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={self.num_samples}, labeled={self.labeled}, "
            f"moving_image_shape={self.moving_image_shape}, fixed_image_shape={self.fixed_image_shape})"
        )


class SingleShapeMixin:
    """For loaders whose moving and fixed images share one configured ``image_shape`` (unpaired,
    grouped): both shape properties return it."""

    image_shape: Tuple[int, ...]

    @property
    def moving_image_shape(self) -> Tuple[int, ...]:
        return self.image_shape

    @property
    def fixed_image_shape(self) -> Tuple[int, ...]:
        return self.image_shape


__all__ = ["DataLoader", "SingleShapeMixin", "check_image_shape", "check_same_ids", "steps_per_epoch"]
