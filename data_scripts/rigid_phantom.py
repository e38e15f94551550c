"""A CT/MR-like registration phantom with rigid "bones", built from a real brain and its FreeSurfer labels.

::

    python data_scripts/rigid_phantom.py INPUT OUT_DIR [--labels LABELS] [--shape 64 64 64] [--pairs 16 4 4]
        [--rigid-labels 12 51] [--extra-labels 4 43] [--max-rotation 5] [--max-translation 1.5]
        [--max-displacement 2] [--global-displacement 2] [--control-spacing 16] [--margin 2] [--ramp 5]
        [--noise 0.02] [--crop-margin 4] [--seed 0] [--overwrite]
    python data_scripts/rigid_phantom.py synthetic OUT_DIR ...     # no data: an analytic head (see below)

It stands in for van Ulsen's CT/MR pairs of the lumbar spine ("Multi-modal deep learning based 3D image
registration for osseous anatomies", MSc thesis, TU Delft, 2022): a few structures of a real brain are
declared rigid ("bones"): bright in the moving "CT", dark in the fixed "MR". The ground-truth field moves
each of them rigidly and the rest smoothly, so a rigidity penalty's effect on the bones (the spread of det J
inside them, which is 0 for the truth) can be measured against a known answer.

**Input.** ``INPUT`` is VoxelMorph's ``test_scan.npz`` (``vol``: a 160 x 192 x 224 skull-stripped T1 in
[0, 1]; ``seg``: its FreeSurfer aseg label numbers; keys ``--image-key``/``--label-key``), or any image
file with an integer label map (``--labels``; e.g. nilearn's MNI152 template with a subcortical atlas
resampled to it), or the word ``synthetic`` (:func:`synthetic_anatomy`: an ellipsoidal head whose two
"putamina" carry the aseg numbers 12 and 51, so every default works without data).

**Rigid structures** (``--rigid-labels``, aseg numbers; they become labels 1..K in that order). The default
is the left and right putamen (12, 51): compact nuclei (about 27 x 31 x 42 mm, 8 cm^3 each in this scan), of
the same shape on both sides, and 25 mm apart with both thalami between them, so that the rigid region of
each (structure + ``margin``) and the blending ramp (``ramp``) fit between them at 64^3. The other deep
nuclei the thesis' three vertebrae might suggest cannot be used together: thalamus, caudate and putamen of
one side touch one another (1 mm in this scan: caudate and putamen are joined by grey-matter bridges) and
the two thalami touch at the interthalamic adhesion, and two touching bodies that move differently tear or
fold the tissue between them. Any set passes that keeps ``2 margin + ramp`` voxels between the structures
at the output resolution; e.g. the brain stem (16) is 14 mm from both putamina, enough at 96^3 or with
``--margin 1 --ramp 4``. :func:`check_separation` names the two structures and their distance otherwise.

**Pairs.** The base (the input cropped to the head with ``crop_margin`` source voxels, resampled to
``shape`` with Gaussian anti-aliasing) is first deformed by a smooth random field ``v`` (up to
``global_displacement`` voxels) so that pairs differ: this is the moving anatomy. For each structure
``k`` a rotation ``R_k`` (angles up to ``max_rotation`` degrees about each axis) and a translation ``t_k``
are drawn; ``t_k`` is the soft-tissue field ``s`` (below) at the structure's centre plus up to
``max_translation`` voxels per axis, so a bone moves with the tissue around it and relative to it, like
a vertebra inside the body. The ground-truth DDF ``u`` lives on the fixed grid, in fixed voxels, in
tfreg's convention (``moving`` sampled at ``x + u(x)`` is the fixed image)::

    u(x) = sum_k w_k(x) [(R_k - I)(x - c_k) + t_k] + (1 - sum_k w_k(x)) s(x)

``s`` is a smooth random field (up to ``max_displacement`` voxels, one control point per
``control_spacing`` voxels). ``c_k`` is the centre of structure ``k`` in the fixed image (the moving
centroid minus ``t_k``, so rotations turn each bone about its own centre). The fixed structure ``k`` is
the moving structure pulled back by its rigid map; its rigid region is that structure dilated by
``margin`` voxels. ``w_k`` is 1 there and falls to 0 over ``ramp`` voxels (a smoothstep of the Euclidean
distance to the region); where ramps of two structures overlap, the weights are divided by their sum. So
``u`` is EXACTLY rigid in every rigid region (no other weight reaches it, :func:`check_separation`) and
smooth elsewhere. Every pair's smallest det(I + grad u) (central differences) is computed and recorded;
a draw that folds (det J <= 0) or whose rigid regions come closer than ``ramp`` is drawn again (up to 20
times, :class:`FoldingError` naming the options that help after that). With the defaults at 64^3 on
test_scan.npz no draw was rejected in 16 pairs, smallest det J 0.15 to 0.57.

**Images.** From the base T1 (divided by its 99th percentile inside the head) and the partial-volume
fractions of the rigid structures ``b`` and of the head ``h`` (the label map's non-zero voxels)::

    moving "CT" = (1 - b) h (ct_soft + ct_texture (T1 - mean T1 in the head)) + b ct_bone
    fixed  "MR" = (1 - b) T1 + b mr_bone

bones bright (1.0) and soft tissue a compressed low grey (0.3 +- 0.05) in CT; bones dark (0.05) and soft
tissue the T1 in MR, so the intensities are not related by any monotone map and the images need
multi-modal similarity (MI). The moving image is the CT of the base at ``x + v(x)``, the fixed image the MR
of the base at ``y + v(y)``, ``y = x + u(x)`` (one linear interpolation of the base each), each plus
Gaussian noise (``noise``) and clipped to [0, 1].

**Labels.** Integer maps, ``0`` background and ``1..K`` the rigid structures in ``--rigid-labels`` order,
sampled from the base by nearest neighbour at the same positions (``moving_labels``, ``fixed_labels``;
``dataset.num_labels: K`` reads them as K one-hot channels). ``--extra-labels`` (aseg numbers of soft,
non-rigid structures, e.g. the lateral ventricles 4 and 43) are written as integer maps ``1..E`` into
``moving_extra_labels``/``fixed_extra_labels`` (the registration loaders ignore these folders; they are
for evaluating soft tissue).

**Output**, DeepReg's paired layout, with the geometry (spacing after cropping and down-sampling) in every
file, written into a scratch folder and renamed into place when complete::

    OUT_DIR/{train,valid,test}/{moving_images,fixed_images,moving_labels,fixed_labels,ddfs}/pair_XXX.nii.gz
    OUT_DIR/conversion.json      every parameter, and per pair its split and rigid motions (R, angles, c, t)
                                 and smallest det J
    OUT_DIR/checksums.sha256     SHA-256 of every other file

Pairs are numbered across the splits (train first); pair ``i`` draws from the seed ``(seed, i)``, so the
same seed writes the same files. :func:`make_phantom_pair` returns one pair as NumPy arrays for in-process
use (benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts.conversion import RECORD_NAME, SPLIT_NAMES, write_manifest  # noqa: E402
from data_scripts.synthetic_pairs import load_array, random_smooth_ddf, reference_grid, sample_at  # noqa: E402
from tfreg.data.geometry import ImageGeometry  # noqa: E402
from tfreg.data.image_io import save_image  # noqa: E402
from tfreg.data.self_pair_transform import rotation_matrix  # noqa: E402
from tfreg.file_safety import clean_stale_scratch, replace_folder, scratch_path  # noqa: E402

#: the default rigid structures: left and right putamen (FreeSurfer aseg numbers; see the module docstring)
DEFAULT_RIGID_LABELS: Tuple[int, ...] = (12, 51)
DEFAULT_SHAPE: Tuple[int, ...] = (64, 64, 64)
#: (train, valid, test) pairs written by default
DEFAULT_SPLIT_COUNTS: Tuple[int, int, int] = (16, 4, 4)
#: the folders of one split; ``*_extra_labels`` only with extra labels
PAIR_FOLDERS = ("moving_images", "fixed_images", "moving_labels", "fixed_labels", "ddfs")
EXTRA_FOLDERS = ("moving_extra_labels", "fixed_extra_labels")
#: the value of ``conversion.json``'s ``converter``
CONVERTER = "rigid_phantom"
#: a partial-volume fraction of at least this makes a voxel part of a structure
FRACTION_THRESHOLD = 0.5
#: FreeSurfer aseg names of the structures this phantom is likely to use (recorded in conversion.json)
ASEG_NAMES: Dict[int, str] = {
    4: "Left-Lateral-Ventricle",
    10: "Left-Thalamus",
    11: "Left-Caudate",
    12: "Left-Putamen",
    13: "Left-Pallidum",
    14: "3rd-Ventricle",
    15: "4th-Ventricle",
    16: "Brain-Stem",
    17: "Left-Hippocampus",
    18: "Left-Amygdala",
    43: "Right-Lateral-Ventricle",
    49: "Right-Thalamus",
    50: "Right-Caudate",
    51: "Right-Putamen",
    52: "Right-Pallidum",
    53: "Right-Hippocampus",
    54: "Right-Amygdala",
}


#: the command line's words for the MotionParams and ContrastParams fields
OPTION_HELP = {
    "max_rotation": "largest rotation angle of a bone about each axis, degrees",
    "max_translation": "largest translation of a bone relative to the tissue at its centre, voxels per axis",
    "max_displacement": "peak of the soft-tissue field, voxels",
    "global_displacement": "peak of the base deformation that makes pairs differ, voxels",
    "control_spacing": "voxels between the random fields' control points",
    "margin": "the rigid region is the bone dilated by this many voxels",
    "ramp": "voxels over which the rigid weight falls from 1 to 0",
    "ct_soft": "CT soft-tissue level",
    "ct_texture": "share of the T1's variation kept in the CT",
    "ct_bone": "CT bone intensity",
    "mr_bone": "MR bone intensity",
    "noise": "standard deviation of the Gaussian noise of each image",
}


class FoldingError(RuntimeError):
    """A drawn ground-truth field folds (det J <= 0 somewhere): the motions are too large for the ramp."""


# ------------------------------------------------------------------------------------------ parameters
def _positive_shape(shape: Sequence[int], name: str) -> Tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of positive integers, got {shape!r}") from err
    if len(out) not in (2, 3) or any(s <= 0 for s in out) or any(float(s) != float(t) for s, t in zip(out, shape)):
        raise ValueError(f"{name} must hold 2 or 3 positive integers (voxels), got {tuple(shape)!r}")
    return out


def _non_negative(value: float, name: str, positive: bool = False) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")
    return value


@dataclass(frozen=True)
class MotionParams:
    """How a pair's ground truth is drawn (all lengths in output voxels, angles in degrees).

    Attributes:
        max_rotation: each rotation angle of a rigid structure is uniform in ``[-max_rotation, max_rotation]``
            (3 angles, about axes 0, 1, 2, in 3-D; one in 2-D).
        max_translation: each component of a structure's translation relative to the soft tissue at its
            centre is uniform in ``[-max_translation, max_translation]``.
        max_displacement: peak component of the soft-tissue field ``s`` (``U(0.5, 1)`` times this).
        global_displacement: peak component of the base deformation ``v`` that makes pairs differ.
        control_spacing: voxels between the control points of ``s`` and ``v`` (their smoothness).
        margin: the rigid region is the fixed structure dilated by this many voxels.
        ramp: the blending weight falls from 1 to 0 over this many voxels outside the rigid region.
    """

    max_rotation: float = 5.0
    max_translation: float = 1.5
    max_displacement: float = 2.0
    global_displacement: float = 2.0
    control_spacing: float = 16.0
    margin: float = 2.0
    ramp: float = 5.0

    def __post_init__(self):
        for name in ("max_rotation", "max_translation", "max_displacement", "global_displacement", "margin"):
            _non_negative(getattr(self, name), name)
        _non_negative(self.control_spacing, "control_spacing", positive=True)
        _non_negative(self.ramp, "ramp", positive=True)
        if self.max_rotation >= 90:
            raise ValueError(f"max_rotation must be below 90 degrees, got {self.max_rotation}")


@dataclass(frozen=True)
class ContrastParams:
    """The two contrasts (intensities in [0, 1]; see the module docstring for the formulas).

    Attributes:
        ct_soft: moving "CT" soft-tissue level.
        ct_texture: how much of the T1's variation the CT keeps (compressed: small).
        ct_bone: moving "CT" bone intensity (bright).
        mr_bone: fixed "MR" bone intensity (dark).
        noise: standard deviation of the Gaussian noise added to each image.
    """

    ct_soft: float = 0.3
    ct_texture: float = 0.2
    ct_bone: float = 1.0
    mr_bone: float = 0.05
    noise: float = 0.02

    def __post_init__(self):
        for name in ("ct_soft", "ct_texture", "ct_bone", "mr_bone", "noise"):
            value = _non_negative(getattr(self, name), name)
            if name != "noise" and value > 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")


# ------------------------------------------------------------------------------------------------ base
@dataclass(frozen=True)
class PhantomBase:
    """The anatomy every pair is drawn from, on the output grid.

    Attributes:
        t1: ``(*shape)`` float32 T1 in [0, 1] (divided by its 99th percentile inside the head).
        structures: ``(*shape)`` int32: 0 elsewhere, ``1..K`` the rigid structures, ``K+1..K+E`` the extra
            (non-rigid) structures.
        bone_fraction: ``(*shape)`` float32 partial volume of the rigid structures, in [0, 1].
        head_fraction: ``(*shape)`` float32 partial volume of the labelled head (label map != 0).
        geometry: the output grid (spacing in mm after cropping and resampling).
        rigid_labels: ``(K,)`` source label values of structures ``1..K``.
        extra_labels: ``(E,)`` source label values of structures ``K+1..K+E``.
        source_shape: shape of the input before cropping; crop_start: its first voxel kept.
    """

    t1: np.ndarray
    structures: np.ndarray
    bone_fraction: np.ndarray
    head_fraction: np.ndarray
    geometry: ImageGeometry
    rigid_labels: Tuple[int, ...]
    extra_labels: Tuple[int, ...] = ()
    source_shape: Tuple[int, ...] = ()
    crop_start: Tuple[int, ...] = ()

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.t1.shape)

    @property
    def num_rigid(self) -> int:
        return len(self.rigid_labels)


def _label_values(values: Optional[Sequence[int]], name: str) -> Tuple[int, ...]:
    if values is None:
        return ()
    out = []
    for value in values:
        if isinstance(value, bool) or float(value) != int(value):
            raise ValueError(f"{name}: label values must be integers, got {value!r}")
        out.append(int(value))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: label values must be distinct, got {out}")
    if any(v == 0 for v in out):
        raise ValueError(f"{name}: 0 is the background and cannot be a structure")
    return tuple(out)


def crop_box(label_map: np.ndarray, margin: int) -> Tuple[slice, ...]:
    """The bounding box of the label map's non-zero voxels grown by ``margin`` voxels (clipped to the array)."""
    nonzero = np.argwhere(label_map != 0)
    if nonzero.size == 0:
        raise ValueError("the label map has no non-zero voxel: nothing to crop to")
    low = np.maximum(nonzero.min(axis=0) - margin, 0)
    high = np.minimum(nonzero.max(axis=0) + 1 + margin, label_map.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def resample_to_shape(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Anti-aliased linear resampling of ``array`` to ``shape`` over the same field of view (float64).

    Output voxel ``k`` of an axis shrunk by ``f = n / m`` sits at source index ``(k + 0.5) f - 0.5`` (voxel
    centres, the whole extent kept); each shrunk axis is first smoothed with a Gaussian of
    ``sigma = (f - 1) / 2`` source voxels, as ``data_scripts/chest_xray.py`` does for the X-rays.
    """
    array = np.asarray(array, dtype=np.float64)
    factors = [n / m for n, m in zip(array.shape, shape)]
    sigma = [max(0.0, (f - 1.0) / 2.0) for f in factors]
    if any(s > 0 for s in sigma):
        array = ndimage.gaussian_filter(array, sigma, mode="nearest")
    axes = [(np.arange(m) + 0.5) * f - 0.5 for m, f in zip(shape, factors)]
    coords = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(array, coords, order=1, mode="nearest")


def resampled_geometry(
    geometry: ImageGeometry, start: Sequence[int], cropped_shape: Sequence[int], shape: Sequence[int]
) -> ImageGeometry:
    """The geometry of :func:`resample_to_shape`'s output for a crop starting at source voxel ``start``."""
    factors = np.array([n / m for n, m in zip(cropped_shape, shape)])
    spacing = np.asarray(geometry.spacing) * factors
    first = np.asarray(start, dtype=np.float64) + 0.5 * factors - 0.5  # source index of output voxel 0
    origin = np.asarray(geometry.origin) + geometry.direction @ (np.asarray(geometry.spacing) * first)
    return ImageGeometry(spacing=tuple(spacing), origin=tuple(origin), direction=geometry.direction)


def prepare_base(
    image: np.ndarray,
    label_map: np.ndarray,
    rigid_labels: Sequence[int] = DEFAULT_RIGID_LABELS,
    shape: Optional[Sequence[int]] = DEFAULT_SHAPE,
    geometry: Optional[ImageGeometry] = None,
    extra_labels: Sequence[int] = (),
    crop_margin: int = 4,
) -> PhantomBase:
    """Crop the input to its labelled head, resample it to ``shape`` and find the structures there.

    Args:
        image: ``(*S)`` T1-like image (2-D or 3-D), any range.
        label_map: ``(*S)`` integer label map (FreeSurfer aseg numbers for the defaults).
        rigid_labels: label values of the rigid structures (become labels ``1..K`` in this order).
        shape: output shape (voxels); None keeps the cropped size.
        geometry: the input's geometry; None: 1 mm voxels, origin 0, identity direction.
        extra_labels: label values of non-rigid structures written as extra labels ``1..E``.
        crop_margin: source voxels kept around the labelled head (negative: no cropping).

    Each structure is the voxels of the output grid at least half covered by it (anti-aliased resampling
    of its mask), so small structures keep their volume.

    Raises:
        ValueError: shapes differ or are not positive, a label value is absent from the label map or has
            no voxel left at ``shape``, rigid and extra labels overlap, the label map is not integer.
    """
    image = np.asarray(image, dtype=np.float64)
    label_map = np.asarray(label_map)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be 2-D or 3-D, got shape {image.shape}")
    if label_map.shape != image.shape:
        raise ValueError(f"label map shape {label_map.shape} differs from image shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image holds non-finite values (NaN or inf)")
    if not np.issubdtype(label_map.dtype, np.integer):
        if not np.all(np.isfinite(label_map)) or not np.all(np.mod(label_map, 1) == 0):
            raise ValueError("the label map must hold integer label numbers")
    label_map = label_map.astype(np.int64)
    rigid = _label_values(rigid_labels, "rigid_labels")
    extra = _label_values(extra_labels, "extra_labels")
    if not rigid:
        raise ValueError("rigid_labels: at least one rigid structure is needed")
    if set(rigid) & set(extra):
        raise ValueError(f"rigid_labels and extra_labels share {sorted(set(rigid) & set(extra))}")
    present = set(int(v) for v in np.unique(label_map))
    for name, values in (("rigid_labels", rigid), ("extra_labels", extra)):
        missing = [v for v in values if v not in present]
        if missing:
            raise ValueError(
                f"{name}: label value(s) {missing} are absent from the label map (values present: "
                f"{sorted(present - {0})})"
            )
    geometry = geometry if geometry is not None else ImageGeometry.identity(image.ndim)
    if geometry.ndim != image.ndim:
        raise ValueError(f"geometry is {geometry.ndim}-D but the image is {image.ndim}-D")
    source_shape = tuple(int(s) for s in image.shape)
    box = crop_box(label_map, crop_margin) if crop_margin >= 0 else tuple(slice(0, s) for s in image.shape)
    image, label_map = image[box], label_map[box]
    start = tuple(b.start for b in box)
    shape = image.shape if shape is None else _positive_shape(shape, "shape")
    if len(shape) != image.ndim:
        raise ValueError(f"shape {tuple(shape)} has {len(shape)} axes but the image has {image.ndim}")

    head = resample_to_shape(label_map != 0, shape)
    fractions = [resample_to_shape(label_map == value, shape) for value in rigid + extra]
    structures = np.zeros(shape, np.int32)
    best = np.full(shape, FRACTION_THRESHOLD - 1e-9)
    for index, fraction in enumerate(fractions, start=1):
        chosen = fraction > best
        structures[chosen] = index
        best = np.where(chosen, fraction, best)
    for index, value in enumerate(rigid + extra, start=1):
        if not np.any(structures == index):
            raise ValueError(
                f"label value {value} has no voxel left at shape {tuple(shape)} (less than half of every output "
                "voxel): choose a larger shape or a larger structure"
            )
    t1 = resample_to_shape(image, shape)
    inside = head >= FRACTION_THRESHOLD
    scale = float(np.percentile(t1[inside], 99)) if np.any(inside) else float(t1.max())
    if not scale > 0:
        raise ValueError("the image is zero inside the labelled head: nothing to build contrasts from")
    bone = np.clip(np.sum(fractions[: len(rigid)], axis=0), 0.0, 1.0)
    return PhantomBase(
        t1=np.clip(t1 / scale, 0.0, 1.0).astype(np.float32),
        structures=structures,
        bone_fraction=bone.astype(np.float32),
        head_fraction=np.clip(head, 0.0, 1.0).astype(np.float32),
        geometry=resampled_geometry(geometry, start, image.shape, shape),
        rigid_labels=rigid,
        extra_labels=extra,
        source_shape=source_shape,
        crop_start=start,
    )


def synthetic_anatomy(shape: Sequence[int] = (48, 48, 48), seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """An analytic head with aseg-like labels, for runs without data (and the tests): ``(t1, label_map)``.

    An ellipsoid (semi-axes 0.42 of the shape) of cortex (3, T1 0.55) around white matter (2, T1 0.8); two
    lateral ventricles (4, 43, T1 0.2) near the centre; two "putamina" (12 left, 51 right, T1 0.65),
    ellipsoids of semi-axes 0.08-0.11 of the shape at +-0.24 of the first axis from the centre, so the
    default rigid labels exist and are 0.32 of the shape apart (9 voxels at 32^3 after cropping, enough for
    the default margin and ramp). Smooth texture (``seed``) and a 0.7-voxel blur.
    """
    shape = _positive_shape(shape, "shape")
    rng = np.random.default_rng(seed)
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    grid = reference_grid(shape)
    size = np.asarray(shape, dtype=np.float64)

    def ellipsoid(offset, semi_axes):
        offset, semi_axes = np.asarray(offset) * size, np.asarray(semi_axes) * size
        return np.sum(((grid - centre - offset) / semi_axes) ** 2, axis=-1) <= 1.0

    ndim = len(shape)
    labels = np.zeros(shape, np.int32)
    labels[ellipsoid([0.0] * ndim, [0.42] * ndim)] = 3
    labels[ellipsoid([0.0] * ndim, [0.34] * ndim)] = 2
    ventricle = [0.05, 0.14] + [0.07] * (ndim - 2)
    labels[ellipsoid([0.06, -0.06] + [0.0] * (ndim - 2), ventricle)] = 4
    labels[ellipsoid([-0.06, -0.06] + [0.0] * (ndim - 2), ventricle)] = 43
    putamen = [0.08, 0.11] + [0.09] * (ndim - 2)
    labels[ellipsoid([0.24, 0.08] + [0.0] * (ndim - 2), putamen)] = 12
    labels[ellipsoid([-0.24, 0.08] + [0.0] * (ndim - 2), putamen)] = 51
    intensity = {0: 0.0, 2: 0.8, 3: 0.55, 4: 0.2, 43: 0.2, 12: 0.65, 51: 0.65}
    t1 = np.zeros(shape)
    for value, level in intensity.items():
        t1[labels == value] = level
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    t1 = t1 + (labels != 0) * 0.05 * texture / max(float(np.abs(texture).max()), 1e-12)
    return np.clip(ndimage.gaussian_filter(t1, 0.7), 0.0, 1.0).astype(np.float32), labels


# -------------------------------------------------------------------------------------- ground truth
@dataclass(frozen=True)
class RigidMotion:
    """The rigid map of one structure on the fixed grid: ``x -> R (x - centre) + centre + translation``.

    Attributes:
        label: the structure's label, ``1..K``.
        source_label: its label value in the input label map.
        angles_deg: the rotation angles (about axes 0, 1, 2; one in 2-D), degrees.
        matrix: ``(ndim, ndim)`` rotation, :func:`tfreg.data.self_pair_transform.rotation_matrix` of the angles.
        centre: ``(ndim,)`` the structure's centre in the fixed image, voxels.
        translation: ``(ndim,)`` voxels.
    """

    label: int
    source_label: int
    angles_deg: Tuple[float, ...]
    matrix: np.ndarray
    centre: np.ndarray
    translation: np.ndarray

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """``(R - I)(x - c) + t`` at ``points`` ``(..., ndim)`` (voxels)."""
        rel = points - self.centre
        return rel @ self.matrix.T - rel + self.translation

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "source_label": self.source_label,
            "name": ASEG_NAMES.get(self.source_label, ""),
            "angles_deg": [float(a) for a in self.angles_deg],
            "rotation_matrix": np.asarray(self.matrix).tolist(),
            "centre_voxel": [float(c) for c in self.centre],
            "translation_voxel": [float(t) for t in self.translation],
        }


def smoothstep(t: np.ndarray) -> np.ndarray:
    """``3 t^2 - 2 t^3`` on [0, 1]: 0 and 1 with zero slope at the ends (largest slope 1.5)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def rigid_weights(cores: Sequence[np.ndarray], ramp: float) -> np.ndarray:
    """``(K, *shape)`` blending weights of the rigid regions ``cores`` (boolean ``(*shape)`` each).

    ``a_k = smoothstep(1 - d_k / ramp)``, ``d_k`` the Euclidean distance (voxels) to core ``k``; the weights
    are ``a_k / max(1, sum_j a_j)``. A weight is exactly 1 on its core when no other core lies within
    ``ramp`` voxels of it (:func:`check_separation`).
    """
    raw = np.stack([smoothstep(1.0 - ndimage.distance_transform_edt(~core) / ramp) for core in cores])
    return raw / np.maximum(1.0, raw.sum(axis=0))


def jacobian_determinant(ddf: np.ndarray) -> np.ndarray:
    """``det(I + grad u)`` of a ``(*shape, ndim)`` DDF (voxels), central differences (``numpy.gradient``)."""
    ndim = ddf.shape[-1]
    jac = np.stack([np.stack(np.gradient(ddf[..., c]), axis=-1) for c in range(ndim)], axis=-2)
    return np.linalg.det(jac + np.eye(ndim))


def structure_distances(structures: np.ndarray, labels: Sequence[int]) -> Dict[Tuple[int, int], float]:
    """``{(a, b): smallest distance in voxels between structures a and b}`` (centre to centre) for a < b."""
    out = {}
    for i, a in enumerate(labels):
        distance = ndimage.distance_transform_edt(structures != a)
        for b in labels[i + 1 :]:
            out[(a, b)] = float(distance[structures == b].min())
    return out


def check_separation(base: PhantomBase, motion: MotionParams) -> None:
    """ValueError naming two rigid structures closer than ``2 margin + ramp`` voxels in the base."""
    need = 2.0 * motion.margin + motion.ramp
    for (a, b), distance in structure_distances(base.structures, range(1, base.num_rigid + 1)).items():
        if distance < need:
            raise ValueError(
                f"rigid structures {base.rigid_labels[a - 1]} and {base.rigid_labels[b - 1]} are {distance:.1f} voxels "
                f"apart at shape {base.shape}; 2 * margin + ramp = {need:g} voxels must fit between them: choose "
                "structures further apart, a smaller margin or ramp, or a finer shape"
            )


@dataclass
class PhantomPair:
    """One generated pair (arrays on the output grid; images float32 in [0, 1], labels uint8).

    Attributes:
        moving_image: ``(*shape)`` "CT". fixed_image: ``(*shape)`` "MR".
        moving_label, fixed_label: ``(*shape)`` integer maps ``0..K``.
        ddf: ``(*shape, ndim)`` float32 ground truth on the fixed grid, fixed voxels: moving sampled at
            ``x + ddf(x)`` is the fixed image.
        motions: the rigid map of each structure.
        rigid_regions: ``(*shape)`` uint8 ``0..K``: where ``ddf`` equals structure ``k``'s rigid
            displacement exactly (the fixed structure dilated by ``margin``).
        min_det_jacobian: the smallest ``det(I + grad ddf)`` over the grid.
        moving_extra_label, fixed_extra_label: ``(*shape)`` ``0..E`` maps, or None without extra labels.
    """

    moving_image: np.ndarray
    fixed_image: np.ndarray
    moving_label: np.ndarray
    fixed_label: np.ndarray
    ddf: np.ndarray
    motions: List[RigidMotion]
    rigid_regions: np.ndarray
    min_det_jacobian: float
    moving_extra_label: Optional[np.ndarray] = None
    fixed_extra_label: Optional[np.ndarray] = None
    record: dict = field(default_factory=dict)


def ct_contrast(
    t1: np.ndarray, bone: np.ndarray, head: np.ndarray, t1_mean: float, contrast: ContrastParams
) -> np.ndarray:
    """The "CT" of an anatomy: compressed soft tissue around ``ct_soft``, bright bones, 0 outside the head.

    ``t1``, ``bone`` and ``head`` are ``(*shape)`` (T1, bone and head fractions); ``t1_mean`` is the mean T1
    inside the head, the level the texture is taken around.
    """
    soft = head * (contrast.ct_soft + contrast.ct_texture * (t1 - t1_mean))
    return np.clip((1.0 - bone) * soft + bone * contrast.ct_bone, 0.0, 1.0)


def mr_contrast(t1: np.ndarray, bone: np.ndarray, contrast: ContrastParams) -> np.ndarray:
    """The "MR" of an anatomy: the T1 with dark bones (``mr_bone``)."""
    return np.clip((1.0 - bone) * t1 + bone * contrast.mr_bone, 0.0, 1.0)


def pair_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of pair ``index``: independent of the other pairs and of how many are written."""
    return np.random.default_rng([int(seed), int(index)])


class _Rejected(Exception):
    """A drawn ground truth that breaks a condition (rigid regions too close, folding); drawn again."""


def _fields_at(field_array: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A ``(*shape, ndim)`` field sampled linearly at ``points`` ``(..., ndim)`` (voxels)."""
    return np.stack([sample_at(field_array[..., c], points, order=1) for c in range(field_array.shape[-1])], axis=-1)


def draw_ground_truth(
    moving_structures: np.ndarray,
    rigid_labels: Sequence[int],
    rng: np.random.Generator,
    motion: MotionParams,
) -> Tuple[np.ndarray, List[RigidMotion], np.ndarray, float]:
    """One draw of the ground-truth DDF for a moving anatomy (see the module docstring).

    Args:
        moving_structures: ``(*shape)`` integer map of the moving anatomy, rigid structures ``1..K``.
        rigid_labels: ``(K,)`` their source label values (recorded in the motions).

    Returns:
        ``(ddf (*shape, ndim) float64, motions, rigid regions (*shape) uint8 0..K, smallest det J)``.

    Raises:
        _Rejected: two rigid regions closer than ``ramp``, a structure pulled off the grid, or folding.
    """
    shape, ndim = moving_structures.shape, moving_structures.ndim
    grid = reference_grid(shape)
    s = random_smooth_ddf(shape, rng, motion.max_displacement, motion.control_spacing).astype(np.float64)
    motions, cores = [], []
    for k, source_label in enumerate(rigid_labels, start=1):
        moving_centre = np.argwhere(moving_structures == k).mean(axis=0)
        angles = tuple(float(a) for a in rng.uniform(-motion.max_rotation, motion.max_rotation, 3 if ndim == 3 else 1))
        translation = _fields_at(s, moving_centre[None, :])[0]  # the bone moves with the tissue at its centre...
        translation = translation + rng.uniform(-motion.max_translation, motion.max_translation, ndim)  # ...and in it
        rigid = RigidMotion(
            label=k,
            source_label=int(source_label),
            angles_deg=angles,
            matrix=rotation_matrix(angles),
            centre=moving_centre - translation,  # the fixed structure's centre: it maps onto the moving centroid
            translation=translation,
        )
        # the fixed structure: the moving structure pulled back by the rigid map, sampled as the fixed labels are
        fixed_structure = sample_at(moving_structures, grid + rigid.displacement(grid), order=0) == k
        if not np.any(fixed_structure):
            raise _Rejected(f"rigid structure {source_label} left the fixed grid")
        cores.append(ndimage.distance_transform_edt(~fixed_structure) <= motion.margin)
        motions.append(rigid)
    for a in range(len(cores)):
        for b in range(a + 1, len(cores)):
            gap = float(ndimage.distance_transform_edt(~cores[a])[cores[b]].min())
            if gap < motion.ramp:
                raise _Rejected(
                    f"the rigid regions of structures {rigid_labels[a]} and {rigid_labels[b]} came {gap:.1f} voxels "
                    f"apart (less than ramp = {motion.ramp:g})"
                )
    weights = rigid_weights(cores, motion.ramp)
    ddf = (1.0 - weights.sum(axis=0))[..., None] * s
    for k, rigid in enumerate(motions):
        ddf += weights[k][..., None] * rigid.displacement(grid)
    min_det = float(jacobian_determinant(ddf).min())
    if not min_det > 0:
        raise _Rejected(f"the field folds (smallest det J {min_det:.3f})")
    regions = np.zeros(shape, np.uint8)
    for k, core in enumerate(cores, start=1):
        regions[core] = k
    return ddf, motions, regions, min_det


def make_phantom_pair(
    base: PhantomBase,
    seed: int = 0,
    index: int = 0,
    motion: MotionParams = MotionParams(),
    contrast: ContrastParams = ContrastParams(),
    max_attempts: int = 20,
) -> PhantomPair:
    """Draw pair ``index`` of ``seed`` from ``base`` (see the module docstring); NumPy arrays, nothing written.

    The moving anatomy is the base under the smooth field ``v`` (T1, bone and head fractions linearly,
    structures by nearest neighbour, on the grid); the fixed anatomy is the moving one warped by the ground
    truth ``u`` (``fixed(x) = moving(x + u(x))``, the labels by nearest neighbour). A draw whose rigid regions
    come closer than ``ramp`` or whose field folds is drawn again (the pair's generator continues), up to
    ``max_attempts`` times; the record's ``attempts`` says how many were needed.

    Raises:
        ValueError: two rigid structures too close in the base (:func:`check_separation`), or a structure
            pushed off the grid by ``v``.
        FoldingError: no valid draw in ``max_attempts`` (the last reason given).
    """
    check_separation(base, motion)
    rng = pair_rng(seed, index)
    shape, num_rigid = base.shape, base.num_rigid
    grid = reference_grid(shape)
    v = random_smooth_ddf(shape, rng, motion.global_displacement, motion.control_spacing).astype(np.float64)
    moving_coords = grid + v
    structures = sample_at(base.structures, moving_coords, order=0).astype(np.int32)
    for k, value in enumerate(base.rigid_labels, start=1):
        if not np.any(structures == k):
            raise ValueError(
                f"rigid structure {value} left the grid under the base deformation: lower global_displacement"
            )
    reason = ""
    for attempt in range(1, max_attempts + 1):
        try:
            ddf, motions, regions, min_det = draw_ground_truth(structures, base.rigid_labels, rng, motion)
            break
        except _Rejected as err:
            reason = str(err)
    else:
        raise FoldingError(
            f"pair {index} (seed {seed}): no valid ground truth in {max_attempts} draws ({reason}); lower "
            "max_rotation, max_translation or max_displacement, or raise ramp or control_spacing, or use structures "
            "further apart"
        )
    t1 = sample_at(base.t1, moving_coords, order=1)
    bone = sample_at(base.bone_fraction, moving_coords, order=1)
    head = sample_at(base.head_fraction, moving_coords, order=1)
    inside = base.head_fraction >= FRACTION_THRESHOLD
    t1_mean = float(base.t1[inside].mean()) if np.any(inside) else 0.0
    fixed_coords = grid + ddf
    fixed_structures = sample_at(structures, fixed_coords, order=0).astype(np.int32)

    def noisy(image: np.ndarray) -> np.ndarray:
        return np.clip(image + rng.normal(0.0, contrast.noise, shape), 0.0, 1.0).astype(np.float32)

    moving_image = noisy(ct_contrast(t1, bone, head, t1_mean, contrast))
    fixed_image = noisy(sample_at(mr_contrast(t1, bone, contrast), fixed_coords, order=1))

    def rigid_part(labels: np.ndarray) -> np.ndarray:
        return np.where(labels <= num_rigid, labels, 0).astype(np.uint8)

    def extra_part(labels: np.ndarray) -> Optional[np.ndarray]:
        if not base.extra_labels:
            return None
        return np.where(labels > num_rigid, labels - num_rigid, 0).astype(np.uint8)

    record = {
        "motions": [m.to_dict() for m in motions],
        "min_det_jacobian": min_det,
        "attempts": attempt,
        "max_abs_ddf_voxel": float(np.abs(ddf).max()),
        "max_abs_base_deformation_voxel": float(np.abs(v).max()),
    }
    return PhantomPair(
        moving_image=moving_image,
        fixed_image=fixed_image,
        moving_label=rigid_part(structures),
        fixed_label=rigid_part(fixed_structures),
        ddf=ddf.astype(np.float32),
        motions=motions,
        rigid_regions=regions,
        min_det_jacobian=min_det,
        moving_extra_label=extra_part(structures),
        fixed_extra_label=extra_part(fixed_structures),
        record=record,
    )


# ------------------------------------------------------------------------------------------ writing
def check_split_counts(counts: Sequence[int]) -> Tuple[int, int, int]:
    """``(train, valid, test)`` pair counts: three non-negative integers, not all zero."""
    counts = tuple(counts)
    if len(counts) != 3 or any(isinstance(c, bool) or int(c) != c or c < 0 for c in counts) or sum(counts) == 0:
        raise ValueError(
            f"split_counts must be three non-negative integers (train, valid, test), not all 0; got {counts}"
        )
    return tuple(int(c) for c in counts)


def pair_names(split_counts: Sequence[int]) -> Dict[str, List[str]]:
    """``{split: [pair_000, ...]}``, numbered across the splits (train first), empty splits left out."""
    total = sum(split_counts)
    width = max(3, len(str(total - 1)))
    names, start = {}, 0
    for split, count in zip(SPLIT_NAMES, split_counts):
        if count:
            names[split] = [f"pair_{i:0{width}d}" for i in range(start, start + count)]
        start += count
    return names


def write_phantom(
    base: PhantomBase,
    out_dir: str,
    split_counts: Sequence[int] = DEFAULT_SPLIT_COUNTS,
    seed: int = 0,
    motion: MotionParams = MotionParams(),
    contrast: ContrastParams = ContrastParams(),
    overwrite: bool = False,
    source: str = "",
    suffix: str = ".nii.gz",
    progress: bool = False,
) -> dict:
    """Write the phantom in DeepReg's paired layout (see the module docstring); returns the record written
    to ``conversion.json``.

    The tree is written into a scratch folder and renamed to ``out_dir`` when complete; an existing
    non-empty ``out_dir`` is replaced only with ``overwrite``.

    Raises:
        FileExistsError: ``out_dir`` exists and is not empty (without ``overwrite``), or is a file.
        ValueError: bad split counts or structures too close (nothing is written).
        FoldingError: a drawn field folds (nothing is written).
    """
    counts = check_split_counts(split_counts)
    check_separation(base, motion)
    out_dir = os.path.abspath(os.path.expanduser(out_dir))
    if os.path.lexists(out_dir):
        if os.path.islink(out_dir) or not os.path.isdir(out_dir):
            raise FileExistsError(f"output {out_dir} exists and is not a folder: choose another output folder")
        if os.listdir(out_dir) and not overwrite:
            raise FileExistsError(f"output folder {out_dir} exists and is not empty: pass overwrite (--overwrite)")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    clean_stale_scratch(parent)
    scratch = scratch_path(out_dir)
    splits = pair_names(counts)
    record = {
        "converter": CONVERTER,
        "source": source,
        "seed": int(seed),
        "shape": list(base.shape),
        "spacing_mm": list(base.geometry.spacing),
        "origin_mm": list(base.geometry.origin),
        "source_shape": list(base.source_shape),
        "crop_start": list(base.crop_start),
        "rigid_labels": {str(k): v for k, v in enumerate(base.rigid_labels, start=1)},
        "rigid_label_names": {str(k): ASEG_NAMES.get(v, "") for k, v in enumerate(base.rigid_labels, start=1)},
        "extra_labels": {str(k): v for k, v in enumerate(base.extra_labels, start=1)},
        "num_labels": base.num_rigid,
        "motion": asdict(motion),
        "contrast": asdict(contrast),
        "ddf_convention": "fixed grid, fixed voxels, ij(k) order: moving sampled at x + ddf(x) is the fixed image",
        "splits": splits,
        "pairs": {},
    }
    written = []
    os.makedirs(scratch)
    try:
        index = 0
        for split, names in splits.items():
            for name in names:
                pair = make_phantom_pair(base, seed, index, motion, contrast)
                arrays = {
                    "moving_images": pair.moving_image,
                    "fixed_images": pair.fixed_image,
                    "moving_labels": pair.moving_label,
                    "fixed_labels": pair.fixed_label,
                    "ddfs": pair.ddf,
                }
                if base.extra_labels:
                    arrays["moving_extra_labels"] = pair.moving_extra_label
                    arrays["fixed_extra_labels"] = pair.fixed_extra_label
                for folder, array in arrays.items():
                    rel = os.path.join(split, folder, name + suffix)
                    save_image(array, os.path.join(scratch, rel), base.geometry)
                    written.append(rel)
                record["pairs"][name] = {"split": split, "index": index, **pair.record}
                index += 1
                if progress:
                    print(
                        f"[rigid_phantom] {index}/{sum(counts)} {split}/{name}: min det J {pair.min_det_jacobian:.3f}"
                    )
        with open(os.path.join(scratch, RECORD_NAME), "w", encoding="utf-8") as stream:
            json.dump(record, stream, indent=1)
            stream.write("\n")
        write_manifest(scratch, written + [RECORD_NAME])
        replace_folder(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return record


def load_input(
    path: str,
    labels: Optional[str] = None,
    image_key: str = "vol",
    label_key: str = "seg",
    spacing: Optional[Sequence[float]] = None,
    synthetic_shape: Sequence[int] = (48, 48, 48),
    seed: int = 0,
) -> Tuple[np.ndarray, np.ndarray, Optional[ImageGeometry]]:
    """``(image, label_map, geometry)`` from an npz (both arrays in one file unless ``labels``), an image file
    with ``labels``, or ``"synthetic"`` (:func:`synthetic_anatomy`). ``spacing`` (mm) gives an npz a grid."""
    if path == "synthetic":
        image, label_map = synthetic_anatomy(synthetic_shape, seed)
        geometry = None
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"input {path} does not exist (an .npz, an image file, or 'synthetic')")
        image, geometry = load_array(path, image_key)
        label_path = labels or (path if path.endswith(".npz") else None)
        if label_path is None:
            raise ValueError(f"--labels: {path} is an image file; give its integer label map with --labels")
        if not os.path.isfile(label_path):
            raise FileNotFoundError(f"--labels: {label_path} does not exist")
        label_map, _ = load_array(label_path, label_key)
    if spacing is not None:
        if geometry is not None:
            raise ValueError("--spacing is only for npz input (an image file has its own spacing)")
        geometry = ImageGeometry(tuple(spacing), (0.0,) * len(spacing), np.eye(len(spacing)))
    return image, label_map, geometry


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="an .npz with image and aseg (test_scan.npz), an image file, or 'synthetic'")
    parser.add_argument("out_dir", help="output folder (DeepReg paired layout with train/valid/test)")
    parser.add_argument("--labels", help="integer label map file (for an image-file input, or a second npz)")
    parser.add_argument("--image-key", default="vol", help="npz key of the image (default vol)")
    parser.add_argument("--label-key", default="seg", help="npz key of the label map (default seg)")
    parser.add_argument("--spacing", type=float, nargs="+", help="input voxel spacing (mm) for npz input")
    parser.add_argument("--shape", type=int, nargs="+", default=list(DEFAULT_SHAPE), help="output shape (voxels)")
    parser.add_argument(
        "--pairs",
        type=int,
        nargs=3,
        default=list(DEFAULT_SPLIT_COUNTS),
        metavar=("TRAIN", "VALID", "TEST"),
        help="pairs per split (default 16 4 4)",
    )
    parser.add_argument(
        "--rigid-labels",
        type=int,
        nargs="+",
        default=list(DEFAULT_RIGID_LABELS),
        help="label values of the rigid bones, labels 1..K in this order (default 12 51: left and right putamen)",
    )
    parser.add_argument("--extra-labels", type=int, nargs="*", default=[], help="non-rigid structures to write")
    for params in (MotionParams(), ContrastParams()):
        for name, value in asdict(params).items():
            parser.add_argument(
                "--" + name.replace("_", "-"),
                type=float,
                default=value,
                help=f"{OPTION_HELP[name]} (default {value:g})",
            )
    parser.add_argument("--crop-margin", type=int, default=4, help="source voxels around the head (-1: no crop)")
    parser.add_argument(
        "--synthetic-shape", type=int, nargs="+", default=None, help="for input 'synthetic' (default: --shape)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = parser.parse_args(argv)
    try:
        motion = MotionParams(**{name: getattr(args, name) for name in asdict(MotionParams())})
        contrast = ContrastParams(**{name: getattr(args, name) for name in asdict(ContrastParams())})
        image, label_map, geometry = load_input(
            args.input,
            args.labels,
            args.image_key,
            args.label_key,
            args.spacing,
            args.synthetic_shape or args.shape,
            args.seed,
        )
        base = prepare_base(
            image, label_map, args.rigid_labels, args.shape, geometry, args.extra_labels, args.crop_margin
        )
        record = write_phantom(
            base, args.out_dir, args.pairs, args.seed, motion, contrast, args.overwrite, args.input, progress=True
        )
    except (ValueError, KeyError, OSError, FoldingError) as err:
        print(f"[rigid_phantom] error: {err}", file=sys.stderr)
        return 1
    low = min(p["min_det_jacobian"] for p in record["pairs"].values())
    print(
        f"[rigid_phantom] wrote {len(record['pairs'])} pairs of {tuple(record['shape'])} voxels "
        f"({', '.join(f'{s:.2f}' for s in record['spacing_mm'])} mm) to {args.out_dir}; smallest det J {low:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
