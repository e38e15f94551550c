"""Make registration pairs with a known answer from one image and its label map.

::

    python data_scripts/synthetic_pairs.py IMAGE OUT_DIR --num-pairs 8 [--labels LABELS] [--labels-list 2,3,4]
        [--max-displacement 4] [--control-spacing 16] [--second-modality] [--seed 0] [--downsample 2]
        [--max-rotation 5] [--max-scale 0.05] [--max-shear 0.03] [--max-translation 3]

``IMAGE`` (and ``LABELS``, an integer label map) are NIfTI (or any SimpleITK format) or ``.npz``
(``--image-key``/``--label-key``, default ``vol``/``seg`` as in VoxelMorph's ``test_scan.npz``; a single
npz can hold both). For pair ``k``, with smooth random displacement fields ``v`` and ``u`` (voxels):

- moving image: ``base(x + v(x))`` (``--no-moving-deformation``: the base image itself);
- fixed image: ``moving(x + u(x))``, sampled once from the base at ``x + u(x) + v(x + u(x))``;
- with an affine range (``--max-rotation``/``--max-scale``/``--max-shear``/``--max-translation``),
  ``u`` also holds a random affine map ``A`` about the image centre, applied after a smooth field
  ``s``: ``x + u(x) = A(x + s(x))`` (see :func:`random_affine`); without one ``u = s``;
- ground-truth DDF ``u``: ``(*shape, ndim)`` in moving voxels, ``ij(k)`` order; warping the moving image
  with it (tfreg's convention, ``moving`` sampled at ``grid + ddf``) gives the fixed image;
- labels: the label map sampled by nearest neighbour at the same positions, one channel per label value
  (``--labels-list``; default every non-zero value), stored as ``uint8`` masks.

``--second-modality`` gives the fixed image a different contrast: every label region's mean intensity
is replaced by a random one (background included), keeping half of the local texture, so image
similarity must be multi-modal (MI, MIND) while the labels and the DDF still give the answer.

``--downsample F`` first reduces the image by an integer factor ``F`` per axis (Gaussian anti-aliasing,
sigma ``F / 2`` voxels, then every ``F``-th voxel; the label map takes the same voxels, unsmoothed):
``--downsample 2`` turns VoxelMorph's 160x192x224 scan into the 80x96x112 of benchmarks/bench_register.py,
whose pair ``k`` is this script's single pair with ``--seed`` (its seed + ``k``).

Output, DeepReg's paired layout (``OUT_DIR`` is a split folder)::

    OUT_DIR/moving_images/pair_000.nii.gz   fixed_images/   moving_labels/   fixed_labels/   ddfs/

The geometry of ``IMAGE`` (or ``--spacing`` for npz input) is written into every file.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, save_image


def random_smooth_ddf(
    shape: Sequence[int], rng: np.random.Generator, max_displacement: float, control_spacing: float
) -> np.ndarray:
    """A smooth random displacement field ``(*shape, ndim)`` (voxels) with ``max |u_c| <= max_displacement``.

    Gaussian noise on a coarse grid (one control point every ``control_spacing`` voxels, plus a border)
    is upsampled with cubic splines, then scaled so that its largest component is
    ``max_displacement * U(0.5, 1)``. Keep ``max_displacement`` well below ``control_spacing / 2`` for a
    fold-free (invertible) field.
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    coarse_shape = tuple(int(np.ceil(s / control_spacing)) + 2 for s in shape)
    fields = []
    for _ in range(ndim):
        coarse = rng.standard_normal(coarse_shape)
        zoom = [s / c for s, c in zip(shape, coarse_shape)]
        fine = ndimage.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
        fields.append(fine[tuple(slice(0, s) for s in shape)])
    ddf = np.stack(fields, axis=-1)
    peak = np.max(np.abs(ddf))
    amplitude = max_displacement * rng.uniform(0.5, 1.0)
    return (ddf * (amplitude / peak if peak > 0 else 0.0)).astype(np.float32)


def sample_at(array: np.ndarray, coords: np.ndarray, order: int) -> np.ndarray:
    """``array`` sampled at voxel coordinates ``coords`` ``(*shape, ndim)``; edges replicated."""
    return ndimage.map_coordinates(array, np.moveaxis(coords, -1, 0), order=order, mode="nearest")


def reference_grid(shape: Sequence[int]) -> np.ndarray:
    """``(*shape, ndim)`` grid of voxel indices, ``grid[i, j, k] == (i, j, k)``."""
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), axis=-1)


def remap_intensities(
    image: np.ndarray, label_map: np.ndarray, rng: np.random.Generator, texture: float = 0.5
) -> np.ndarray:
    """A synthetic second contrast: each label region's mean becomes a random value in the image range.

    ``out = new_mean[label] + texture * (image - old_mean[label])``, background (label 0) included.
    """
    image = np.asarray(image, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    values, inverse = np.unique(label_map, return_inverse=True)
    inverse = inverse.reshape(label_map.shape)
    old_means = ndimage.mean(image, labels=inverse, index=np.arange(len(values)))
    new_means = rng.uniform(low, high if high > low else low + 1.0, size=len(values))
    return (new_means[inverse] + texture * (image - np.asarray(old_means)[inverse])).astype(np.float32)


def one_hot(label_map: np.ndarray, label_values: Sequence[int]) -> np.ndarray:
    """``(*shape)`` integer map -> ``uint8`` masks ``(*shape, L)``, or ``(*shape)`` when ``L == 1``."""
    masks = np.stack([label_map == value for value in label_values], axis=-1).astype(np.uint8)
    return masks[..., 0] if masks.shape[-1] == 1 else masks


class AffineRange(NamedTuple):
    """Ranges of a random affine map (:func:`random_affine`), each drawn uniformly in ``[-r, r]``.

    Attributes:
        rotation: degrees, per rotation angle (one in 2-D, three Euler angles in 3-D).
        scale: relative, per axis: the scale factor is ``1 + U(-scale, scale)``.
        shear: per off-diagonal entry above the diagonal of the shear matrix.
        translation: voxels, per axis.
    """

    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    translation: float = 0.0

    def any(self) -> bool:
        return any(value != 0 for value in self)


def random_affine(ndim: int, rng: np.random.Generator, ranges: AffineRange) -> Tuple[np.ndarray, np.ndarray]:
    """A random ``(matrix, translation)``: ``matrix = R @ S @ H`` (rotation, scaling, upper shear), voxels.

    The map is applied about the image centre ``c``: ``A(y) = c + matrix @ (y - c) + translation``. The
    angles, scales, shears and shifts are drawn in that order from ``rng``. Voxel units: with
    anisotropic voxels the rotation is one of the voxel grid, not of physical space.
    """
    if any(value < 0 for value in ranges):
        raise ValueError(f"affine ranges must be >= 0, got {ranges}")
    if ranges.scale >= 1:
        raise ValueError(f"the scale range must be below 1 (a factor 1 + U(-r, r) > 0), got {ranges.scale}")
    angles = np.deg2rad(rng.uniform(-ranges.rotation, ranges.rotation, size=1 if ndim == 2 else 3))
    scales = 1.0 + rng.uniform(-ranges.scale, ranges.scale, size=ndim)
    shear = np.eye(ndim)
    upper = np.triu_indices(ndim, k=1)
    shear[upper] = rng.uniform(-ranges.shear, ranges.shear, size=len(upper[0]))
    translation = rng.uniform(-ranges.translation, ranges.translation, size=ndim)
    rotation = np.eye(ndim)
    # one plane rotation per angle: (0, 1) in 2-D; (1, 2), (0, 2), (0, 1) in 3-D
    planes = [(0, 1)] if ndim == 2 else [(1, 2), (0, 2), (0, 1)]
    for angle, (a, b) in zip(angles, planes):
        plane = np.eye(ndim)
        plane[a, a] = plane[b, b] = np.cos(angle)
        plane[a, b], plane[b, a] = -np.sin(angle), np.sin(angle)
        rotation = rotation @ plane
    return rotation @ np.diag(scales) @ shear, translation


def downsample(array: np.ndarray, factor: int, labels: bool = False) -> np.ndarray:
    """Every ``factor``-th voxel per axis, after Gaussian anti-aliasing (sigma ``factor / 2``) unless ``labels``.

    Labels take the same voxels unsmoothed, so the image and its label map stay aligned.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"the downsampling factor must be an int >= 1, got {factor!r}")
    if factor == 1:
        return array
    if not labels:
        array = ndimage.gaussian_filter(np.asarray(array, dtype=np.float64), 0.5 * factor, mode="nearest")
    return array[(slice(None, None, factor),) * array.ndim]


def synthetic_pair(
    image: np.ndarray,
    rng: np.random.Generator,
    label_map: Optional[np.ndarray] = None,
    max_displacement: float = 4.0,
    control_spacing: float = 16.0,
    moving_deformation: bool = True,
    second_modality: bool = False,
    affine: Optional[AffineRange] = None,
) -> Dict[str, np.ndarray]:
    """One pair's arrays (module docstring), drawing from ``rng``: ``v``, ``s``, the affine map, the contrast.

    Args:
        image: ``(*shape)`` float base image.
        rng: the generator; the same state gives the same pair.
        label_map: ``(*shape)`` integer labels, or None.
        max_displacement, control_spacing, moving_deformation, second_modality: as
            :func:`make_synthetic_pairs`.
        affine: ranges of a random affine component of the ground truth (None or all zero: none).

    Returns:
        ``{"moving_image", "fixed_image": (*shape) float32, "ddf": (*shape, ndim) float32 voxels}`` and, with
        labels, ``"moving_label_map"``, ``"fixed_label_map"``: ``(*shape)`` int64 label maps (nearest).
    """
    shape = image.shape
    ndim = len(shape)
    grid = reference_grid(shape)
    v = (
        random_smooth_ddf(shape, rng, max_displacement, control_spacing)
        if moving_deformation
        else np.zeros(shape + (ndim,), np.float32)
    )
    u = random_smooth_ddf(shape, rng, max_displacement, control_spacing)
    y = grid + u
    if affine is not None and affine.any():
        # x + u(x) = A(x + s(x)): the smooth field first, then the affine map about the centre
        matrix, translation = random_affine(ndim, rng, affine)
        centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
        y = (y - centre) @ matrix.T + centre + translation
        u = (y - grid).astype(np.float32)
    moving_coords = grid + v
    # fixed(x) = moving(y) = base(y + v(y)) with y = x + u(x): one interpolation of the base
    v_at_y = np.stack([sample_at(v[..., c], y, order=1) for c in range(ndim)], axis=-1)
    fixed_coords = y + v_at_y
    fixed_base = remap_intensities(image, label_map, rng) if second_modality and label_map is not None else image
    arrays = {
        "moving_image": sample_at(image, moving_coords, order=1),
        "fixed_image": sample_at(fixed_base, fixed_coords, order=1),
        "ddf": u,
    }
    if label_map is not None:
        arrays["moving_label_map"] = sample_at(label_map, moving_coords, order=0)
        arrays["fixed_label_map"] = sample_at(label_map, fixed_coords, order=0)
    return arrays


def make_synthetic_pairs(
    image: np.ndarray,
    out_dir: str,
    num_pairs: int,
    label_map: Optional[np.ndarray] = None,
    label_values: Optional[Sequence[int]] = None,
    geometry: Optional[ImageGeometry] = None,
    seed: int = 0,
    max_displacement: float = 4.0,
    control_spacing: float = 16.0,
    moving_deformation: bool = True,
    second_modality: bool = False,
    suffix: str = ".nii.gz",
    prefix: str = "pair",
    affine: Optional[AffineRange] = None,
) -> List[Dict[str, str]]:
    """Write ``num_pairs`` moving/fixed pairs (+ labels and ground-truth DDFs) in DeepReg's paired layout.

    Args:
        image: ``(*shape)`` base image, 2-D or 3-D.
        out_dir: split folder to write ``moving_images/``, ``fixed_images/``, ``ddfs/`` (and labels) into.
        num_pairs: number of pairs.
        label_map: ``(*shape)`` integer labels, or None for unlabeled pairs.
        label_values: which label values become channels; default every non-zero value present.
        geometry: written into every file; default spacing 1 mm, origin 0, identity direction.
        seed: NumPy seed; the same seed writes the same files.
        max_displacement: largest displacement component of each random field, voxels.
        control_spacing: smoothness: voxels between the random field's control points.
        moving_deformation: also deform the moving image (else it is the base image in every pair).
        second_modality: give the fixed images a different contrast (see :func:`remap_intensities`).
        suffix: file suffix (``.nii.gz``, ``.nii``, ``.mha``, ...).
        prefix: file names are ``<prefix>_<k>``, zero-padded.
        affine: ranges of a random affine component of each ground-truth DDF (:class:`AffineRange`;
            None: smooth deformations only).

    Returns:
        Per pair, ``{"moving_image": path, "fixed_image": path, "ddf": path, ...labels}``.
    """
    image = np.asarray(image, dtype=np.float32)
    shape = image.shape
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be 2-D or 3-D, got shape {shape}")
    if label_map is not None:
        label_map = np.asarray(label_map)
        if label_map.shape != shape:
            raise ValueError(f"label map shape {label_map.shape} differs from image shape {shape}")
        if not np.all(np.equal(np.mod(label_map, 1), 0)):
            raise ValueError("the label map must hold integer label numbers")
        label_map = label_map.astype(np.int64)
        if label_values is None:
            label_values = [int(v) for v in np.unique(label_map) if v != 0]
        if not label_values:
            raise ValueError("the label map has no non-zero label")
    rng = np.random.default_rng(seed)
    width = max(3, len(str(num_pairs - 1)))
    written = []
    for k in range(num_pairs):
        name = f"{prefix}_{k:0{width}d}{suffix}"
        pair = synthetic_pair(
            image, rng, label_map, max_displacement, control_spacing, moving_deformation, second_modality, affine
        )
        arrays = {"moving_images": pair["moving_image"], "fixed_images": pair["fixed_image"], "ddfs": pair["ddf"]}
        if label_map is not None:
            arrays["moving_labels"] = one_hot(pair["moving_label_map"], label_values)
            arrays["fixed_labels"] = one_hot(pair["fixed_label_map"], label_values)
        paths = {}
        for folder, array in arrays.items():
            path = os.path.join(out_dir, folder, name)
            save_image(array, path, geometry)
            paths[folder] = path
        written.append(paths)
    return written


def load_array(path: str, key: Optional[str]) -> Tuple[np.ndarray, Optional[ImageGeometry]]:
    """An array (and its geometry, None for npz) from an image file or an ``.npz`` archive's ``key``."""
    if path.endswith(".npz"):
        with np.load(path) as archive:
            if key not in archive:
                raise KeyError(f"{path} has no array {key!r}; arrays: {sorted(archive.files)}")
            return np.asarray(archive[key]), None
    array, geometry = read_image(path, dtype=None)
    return array, geometry


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="base image: NIfTI/MHA/NRRD or .npz")
    parser.add_argument("out_dir", help="output split folder (DeepReg paired layout)")
    parser.add_argument("--num-pairs", type=int, default=8)
    parser.add_argument("--labels", help="integer label map (image file or .npz); default: IMAGE if it is an npz")
    parser.add_argument("--image-key", default="vol", help="npz key of the image (default vol)")
    parser.add_argument("--label-key", default="seg", help="npz key of the label map (default seg)")
    parser.add_argument("--labels-list", help="comma-separated label values to keep (default: all non-zero)")
    parser.add_argument("--no-labels", action="store_true", help="write unlabeled pairs")
    parser.add_argument(
        "--spacing", type=float, nargs="+", help="voxel spacing (mm) of npz input (before --downsample)"
    )
    parser.add_argument("--max-displacement", type=float, default=4.0, help="voxels (default 4)")
    parser.add_argument(
        "--control-spacing", type=float, default=16.0, help="voxels between control points (default 16)"
    )
    parser.add_argument("--no-moving-deformation", action="store_true", help="moving image = the base image")
    parser.add_argument("--second-modality", action="store_true", help="re-map fixed intensities per label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suffix", default=".nii.gz")
    parser.add_argument("--downsample", type=int, default=1, help="reduce the image by this factor per axis first")
    parser.add_argument("--max-rotation", type=float, default=0.0, help="affine part: degrees per angle (default 0)")
    parser.add_argument("--max-scale", type=float, default=0.0, help="affine part: relative scale range (default 0)")
    parser.add_argument("--max-shear", type=float, default=0.0, help="affine part: shear range (default 0)")
    parser.add_argument("--max-translation", type=float, default=0.0, help="affine part: voxels (default 0)")
    args = parser.parse_args(argv)

    image, geometry = load_array(args.image, args.image_key)
    label_map = None
    if not args.no_labels:
        label_path = args.labels or (args.image if args.image.endswith(".npz") else None)
        if label_path is not None:
            label_map, _ = load_array(label_path, args.label_key)
    image = downsample(image, args.downsample)
    if label_map is not None:
        label_map = downsample(label_map, args.downsample, labels=True)
    if geometry is None and args.spacing:
        geometry = ImageGeometry(args.spacing, (0.0,) * len(args.spacing), np.eye(len(args.spacing)))
    if geometry is not None and args.downsample > 1:
        # voxel 0 is kept, so the origin stays; every step spans `downsample` original voxels
        geometry = ImageGeometry(
            tuple(s * args.downsample for s in geometry.spacing), geometry.origin, geometry.direction
        )
    label_values = [int(v) for v in args.labels_list.split(",")] if args.labels_list else None
    written = make_synthetic_pairs(
        image,
        args.out_dir,
        args.num_pairs,
        label_map=label_map,
        label_values=label_values,
        geometry=geometry,
        seed=args.seed,
        max_displacement=args.max_displacement,
        control_spacing=args.control_spacing,
        moving_deformation=not args.no_moving_deformation,
        second_modality=args.second_modality,
        suffix=args.suffix,
        affine=AffineRange(args.max_rotation, args.max_scale, args.max_shear, args.max_translation),
    )
    print(f"wrote {len(written)} pairs to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
