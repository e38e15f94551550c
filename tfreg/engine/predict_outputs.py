"""Files ``tfreg_predict`` writes per sample, in DeepReg's tree::

    <split>/pair_<image indices joined by _>/
        moving_image.nii.gz  fixed_image.nii.gz  pred_fixed_image.nii.gz
        ddf.nii.gz  [dvf.nii.gz]  [affine.txt]           label-independent: written once per pair
        [moving_landmarks.csv  pred_moving_landmarks.csv  fixed_landmarks.csv]   with landmarks, once per pair
        label_<k>/moving_label.nii.gz  fixed_label.nii.gz  pred_fixed_label.nii.gz
        [<name>/depth<k>_<name>.png]                      with --save_png

Unlabeled data puts the label files (none) and everything else in the pair folder. NIfTI files carry
the input files' geometry (spacing, origin, direction) mapped onto the model's grid: moving arrays on
the moving image's, fixed-grid arrays (fixed image, predictions, DDF/DVF) on the fixed image's
(DeepReg wrote an identity affine). DDF and DVF values stay in moving-image voxels, ij(k) order.
``affine.txt`` holds the global backbone's theta, ``(ndim + 1, ndim)``, comma-separated. The landmark
files (data read with ``landmarks: true``, :meth:`PredictionWriter.write_landmarks`) hold, in mm in the
moving image's frame, the moving landmarks, the fixed landmarks moved through the DDF, and the fixed
landmarks unmoved; ``tfreg_evaluate --pred-dir`` computes the TRE from them.
PNGs are slices along the last spatial axis (2-D images: one PNG); images, DDFs and the conditional
model's predicted label are min-max normalised, labels are not.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np

from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image
from tfreg.data.landmarks import PREDICTED_LANDMARK_FILES, write_landmarks

#: arrays on the moving grid; all others are on the fixed grid
MOVING_KEYS = ("moving_image", "moving_label")
#: written once per pair (outside label_<k>)
PAIR_KEYS = ("moving_image", "fixed_image", "pred_fixed_image", "ddf", "dvf")
LABEL_KEYS = ("moving_label", "fixed_label", "pred_fixed_label")


def pair_folder_name(indices: Sequence[float]) -> str:
    """``pair_<i>_<j>...`` from a sample's indices without the trailing label index."""
    return "pair_" + "_".join(str(int(round(float(i)))) for i in indices[:-1])


def label_index(indices: Sequence[float]) -> int:
    """The sample's label index (the last index; -1 for unlabeled data)."""
    return int(round(float(indices[-1])))


def _normalise(array: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(array)), float(np.max(array))
    return (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)


def save_png_slices(array: np.ndarray, folder: str, name: str, ndim: int, normalise: bool) -> None:
    """PNG slices of ``array`` (``(*S)`` or ``(*S, C)`` with C = 3 shown as RGB) in ``folder/name/``.

    3-D: ``depth<k>_<name>.png`` for each k along the last spatial axis; 2-D: ``<name>.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    array = np.asarray(array, dtype=np.float64)
    if normalise:
        array = _normalise(array)
    array = np.clip(array, 0.0, 1.0)
    out = os.path.join(folder, name)
    os.makedirs(out, exist_ok=True)
    slices = [(None, array)] if ndim == 2 else [(k, array[:, :, k]) for k in range(array.shape[2])]
    for k, image in slices:
        file = f"{name}.png" if k is None else f"depth{k}_{name}.png"
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim == 3 and image.shape[-1] != 3:
            image = image[..., 0]  # a 2-channel field has no colour mapping; show the first component
        plt.imsave(os.path.join(out, file), image, cmap="gray", vmin=0.0, vmax=1.0)


class PredictionWriter:
    """Writes one sample at a time into ``root`` (the split folder).

    Args:
        root: output folder (created).
        save_nifti: write ``.nii.gz`` files.
        save_png: write PNG slices.
        normalise_pred_label: min-max normalise ``pred_fixed_label`` PNGs (conditional model).
    """

    def __init__(self, root: str, save_nifti: bool = True, save_png: bool = False, normalise_pred_label: bool = False):
        self.root = root
        self.save_nifti = save_nifti
        self.save_png = save_png
        self.normalise_pred_label = normalise_pred_label
        self._pairs_written = set()
        os.makedirs(root, exist_ok=True)

    def _save(self, array: np.ndarray, folder: str, name: str, geometry: ImageGeometry) -> None:
        if self.save_nifti:
            array = np.asarray(array)
            # masks stay bool, which save_image writes as uint8; everything else is float32
            save_image(
                array if array.dtype == bool else array.astype(np.float32),
                os.path.join(folder, name + ".nii.gz"),
                geometry,
            )
        if self.save_png:
            is_label = name.endswith("label")
            normalise = not is_label or (name == "pred_fixed_label" and self.normalise_pred_label)
            save_png_slices(array, folder, name, geometry.ndim, normalise)

    def write(
        self,
        arrays: Dict[str, np.ndarray],
        indices: Sequence[float],
        moving_geometry: ImageGeometry,
        fixed_geometry: ImageGeometry,
        theta: Optional[np.ndarray] = None,
        extra_grids: Optional[Dict[str, str]] = None,
    ) -> str:
        """Write one sample; returns its pair folder.

        Args:
            arrays: any of ``moving_image (*m)``, ``fixed_image (*f)``, ``pred_fixed_image (*f)``,
                ``ddf``/``dvf (*f, ndim)``, ``moving_label (*m)``, ``fixed_label``/``pred_fixed_label (*f)``.
            indices: the sample's indices (image indices then the label index).
            moving_geometry, fixed_geometry: geometries of the moving and fixed grids (model space).
            theta: the global backbone's affine parameters ``(ndim + 1, ndim)``, or None.
            extra_grids: a composite model's further outputs to write once per pair (its
                ``prediction_images``: name -> ``"moving"`` or ``"fixed"``, the grid the array lives on),
                e.g. WSSAMNet's segmentations and attention maps ``(*S, K)``; bool arrays (the segmentation
                model's masks) are written as uint8, all others as float32.
        """
        pair = os.path.join(self.root, pair_folder_name(indices))
        os.makedirs(pair, exist_ok=True)
        label = label_index(indices)
        label_folder = pair if label < 0 else os.path.join(pair, f"label_{label}")
        os.makedirs(label_folder, exist_ok=True)
        first = pair not in self._pairs_written
        self._pairs_written.add(pair)
        extra_grids = extra_grids or {}
        for key, array in arrays.items():
            if array is None:
                continue
            geometry = moving_geometry if key in MOVING_KEYS or extra_grids.get(key) == "moving" else fixed_geometry
            if key in PAIR_KEYS or key in extra_grids:
                if first:
                    self._save(array, pair, key, geometry)
            elif key in LABEL_KEYS:
                self._save(array, label_folder, key, geometry)
        if theta is not None and first:
            np.savetxt(os.path.join(pair, "affine.txt"), np.asarray(theta, dtype=np.float64), delimiter=",")
        return pair

    def write_landmarks(self, indices: Sequence[float], points: Dict[str, np.ndarray]) -> None:
        """Write a pair's landmark files (:data:`tfreg.data.landmarks.PREDICTED_LANDMARK_FILES`) into its folder.

        Args:
            indices: the sample's indices (image indices then the label index); labels of one pair share
                the files (written again with the same values).
            points: :func:`tfreg.engine.predict_metrics.landmark_points`: ``moving``, ``pred_moving`` and
                ``fixed``, each ``(K, ndim)`` mm; nothing is written for ``K = 0``.
        """
        if len(points["moving"]) == 0:
            return
        pair = os.path.join(self.root, pair_folder_name(indices))
        os.makedirs(pair, exist_ok=True)
        for key, name in PREDICTED_LANDMARK_FILES.items():
            write_landmarks(os.path.join(pair, name), points[key])


__all__ = ["PredictionWriter", "pair_folder_name", "label_index", "save_png_slices", "PAIR_KEYS", "LABEL_KEYS"]
