"""``tfreg_predict --full_resolution``: a DDF predicted on the model's grid, applied at the files' own resolution.

Train small, test large (He, He and Cao 2022 train at 64x64 and evaluate at 256x256): the network still
sees the images resized to the configured shapes, but its DDF is brought to each fixed image's own grid
and warps the moving image and labels as read from their files, so outputs and metrics are at the files'
resolution and in their physical space.

The model's DDF ``u`` lives on the fixed model grid (``F`` voxels per axis) and counts voxels of the moving
model grid (``M`` voxels per axis). A fixed file of ``f`` voxels and a moving file of ``m`` voxels per axis
cover the same physical extent as their model grids (the resize of the data pipeline, half-pixel centres).
Per axis, with ``r_f = f / F`` and ``r_m = m / M``, the native DDF at fixed file voxel ``y`` is

1. the model-grid coordinate of ``y``: ``s = (y + 0.5) / r_f - 0.5``;
2. the moving model-grid point it is sent to: ``p = s + u(s)``, ``u(s)`` the field resized linearly to the
   ``f`` voxels (:func:`tfreg.ops.resize.resize`, half-pixel centres, edge values beyond the grid);
3. that point in moving file voxels: ``q = (p + 0.5) r_m - 0.5``;
4. the displacement ``d(y) = q - y``, in voxels of the moving file.

For equal ratios ``r_f = r_m = r`` this is ``d = r u(s)``: AC-RegNet's "resize the field, then multiply by
the factor" (He, He and Cao's x4 from 64 to 256). The moving file is then warped with ``d``
(:func:`tfreg.ops.warp.warp`, zero outside): the image linearly, the labels by **nearest neighbour**, so a
binary label file stays binary at full resolution (written as ``pred_fixed_label`` and scored).

A composite model's own images (``prediction_images``, e.g. the segmentations and attention maps of the
``wssamnet`` and ``dfsa`` models) are resized to the files' grids too, and their masks decoded there, so that
they are written and scored at the files' resolution (:func:`native_extra_outputs`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.geometry import ImageGeometry
from tfreg.data.preprocess import resize
from tfreg.engine.predict_outputs import label_index


def native_ddf(
    ddf: np.ndarray,
    moving_model_shape: Sequence[int],
    fixed_shape: Sequence[int],
    moving_shape: Sequence[int],
) -> np.ndarray:
    """The model-grid DDF brought to the fixed file's grid, in voxels of the moving file (module docstring).

    Args:
        ddf: ``(*F, ndim)``, the model's DDF on the fixed model grid ``F``, in voxels of the moving model grid.
        moving_model_shape: ``M``, the moving model grid (``ndim`` ints).
        fixed_shape: ``f``, the fixed file's spatial shape.
        moving_shape: ``m``, the moving file's spatial shape.

    Returns:
        float32 ``(*f, ndim)``: at fixed file voxel ``y``, the displacement to the moving file voxel it is sent
        to, ij(k) order.

    Raises:
        ValueError: for a DDF that is not ``(*F, ndim)`` or shapes of another rank.
    """
    ddf = np.asarray(ddf, dtype=np.float32)
    ndim = ddf.shape[-1]
    if ddf.ndim != ndim + 1 or ndim not in (2, 3):
        raise ValueError(f"native_ddf: ddf must be (*spatial, ndim) with ndim 2 or 3, got shape {ddf.shape}")
    shapes = {"moving_model_shape": moving_model_shape, "fixed_shape": fixed_shape, "moving_shape": moving_shape}
    for name, shape in shapes.items():
        if len(shape) != ndim:
            raise ValueError(f"native_ddf: {name} {tuple(shape)} must have {ndim} axes, like the DDF {ddf.shape}")
    model_fixed = ddf.shape[:-1]
    fixed_shape = tuple(int(n) for n in fixed_shape)
    up = resize(ddf[None], fixed_shape)[0].astype(np.float64)
    out = np.empty(fixed_shape + (ndim,), dtype=np.float32)
    for c in range(ndim):
        y = np.arange(fixed_shape[c], dtype=np.float64).reshape((-1,) + (1,) * (ndim - 1 - c))
        r_f = fixed_shape[c] / model_fixed[c]
        r_m = int(moving_shape[c]) / int(moving_model_shape[c])
        s = (y + 0.5) / r_f - 0.5
        q = (s + up[..., c] + 0.5) * r_m - 0.5
        out[..., c] = q - y
    return out


def warp_array(array: np.ndarray, ddf: np.ndarray, interpolation: str) -> np.ndarray:
    """``array`` ``(*m)`` warped by ``ddf`` ``(*f, ndim)`` (moving voxels; zero outside): float32 ``(*f)``."""
    from keras import ops

    from tfreg.ops.warp import warp

    warped = warp(
        ops.convert_to_tensor(np.asarray(array, np.float32)[None]), ops.convert_to_tensor(ddf[None]), interpolation
    )
    return np.asarray(ops.convert_to_numpy(warped), dtype=np.float32)[0]


def check_full_resolution_model(model, outputs: Dict[str, np.ndarray], method: str) -> None:
    """Refuse a model whose prediction cannot be taken to the files' grids, before anything is written.

    Args:
        model: the built model.
        outputs: its outputs for one batch.
        method: ``train.method`` (for the message).

    Raises:
        ValueError: the model predicts no DDF (``conditional``, ``segmentation``): there is no field to bring
            to the files' grids.
    """
    if "ddf" not in outputs:
        raise ValueError(
            f"--full_resolution needs a model that predicts a DDF, but train.method {method!r} outputs "
            f"{sorted(outputs)}: predict without --full_resolution"
        )


def native_extra_outputs(
    outputs: Dict[str, np.ndarray],
    index: int,
    extra_grids: Dict[str, str],
    label_maps: Dict[str, str],
    arrays: Dict[str, np.ndarray],
    decode,
) -> Dict[str, np.ndarray]:
    """A composite model's own model-grid images (``prediction_images``: segmentations, attention maps) on the
    files' grids: each resized (linear, half-pixel centres) to the file shape of its role (``moving`` or
    ``fixed``); the masks of ``label_maps`` outputs are decoded again from the resized probabilities, so they
    are as sharp as the files' grid allows.

    Args:
        outputs: the batch's model outputs, ``(B, *S, C)`` each.
        index: the sample's position in the batch.
        extra_grids: output name -> role, for the outputs to bring over (mask names included).
        label_maps: probability output -> label it is scored against (the model's ``prediction_label_maps``).
        arrays: the sample's native arrays (``moving_image`` / ``fixed_image`` give the target shapes).
        decode: ``decode(name, probabilities (1, *s, C)) -> masks (1, *s, L)``, the model's ``label_masks``.

    Returns:
        ``{name: (*s, C) array}`` for every probability or attention output present, plus
        ``<name>_mask`` ``(*s, L)`` for the label maps.
    """
    from tfreg.engine.predict_segmentation import mask_name

    masks = {mask_name(name) for name in label_maps}
    out: Dict[str, np.ndarray] = {}
    for name, role in extra_grids.items():
        if name in masks or name not in outputs:
            continue
        shape = arrays[f"{role}_image"].shape
        value = np.asarray(outputs[name][index], dtype=np.float32)
        out[name] = resize(value[None], shape)[0] if value.shape[:-1] != shape else value
        if name in label_maps:
            out[mask_name(name)] = np.asarray(decode(name, out[name][None]))[0]
    return out


class NativeResolution:
    """The per-sample arrays of ``tfreg_predict --full_resolution``, from the loader's files.

    Args:
        loader: the data loader that fed the model (its files are re-read by the samples' indices with
            :meth:`~tfreg.data.loaders.base.DataLoader.load_sample`: normalised as for the model, not resized).

    The images, native DDF and warped image of a pair are computed once and reused for its label rows
    (the pipeline yields a pair's labels one after another).
    """

    def __init__(self, loader):
        self.loader = loader
        self._pair: Optional[Tuple[int, ...]] = None
        self._cache: Dict[str, np.ndarray] = {}
        self._geometries: Tuple[Optional[ImageGeometry], Optional[ImageGeometry]] = (None, None)

    def arrays(
        self, indices: Sequence[float], ddf: np.ndarray
    ) -> Tuple[Dict[str, np.ndarray], ImageGeometry, ImageGeometry]:
        """One sample at the files' resolution.

        Args:
            indices: the sample's ``indices`` (image indices, then the label index; -1 unlabeled).
            ddf: its model-grid DDF ``(*F, ndim)`` (moving model voxels).

        Returns:
            ``(arrays, moving_geometry, fixed_geometry)``: ``moving_image`` ``(*m)``, ``fixed_image``,
            ``pred_fixed_image`` ``(*f)``, ``ddf`` ``(*f, ndim)`` (moving file voxels) and, when labeled,
            ``moving_label`` ``(*m)``, ``fixed_label`` / ``pred_fixed_label`` ``(*f)`` (nearest neighbour),
            float32; the files' own geometries.
        """
        loader = self.loader
        image_indices = tuple(int(round(float(v))) for v in np.asarray(indices).ravel()[:-1])
        label = label_index(indices)
        labeled = loader.labeled and label >= 0
        sample = loader.load_sample(list(image_indices), [label] if labeled else [])
        if image_indices != self._pair:
            moving, fixed = sample["moving_image"], sample["fixed_image"]
            field = native_ddf(ddf, loader.moving_image_shape, fixed.shape, moving.shape)
            self._cache = {
                "moving_image": moving,
                "fixed_image": fixed,
                "ddf": field,
                "pred_fixed_image": warp_array(moving, field, "linear"),
            }
            self._geometries = loader.get_geometry(indices, model_space=False)
            self._pair = image_indices
        arrays = dict(self._cache)
        if labeled:
            arrays["moving_label"] = sample["moving_label"][0]
            arrays["fixed_label"] = sample["fixed_label"][0]
            arrays["pred_fixed_label"] = warp_array(arrays["moving_label"], arrays["ddf"], "nearest")
        return arrays, self._geometries[0], self._geometries[1]


__all__ = ["native_ddf", "warp_array", "check_full_resolution_model", "native_extra_outputs", "NativeResolution"]
