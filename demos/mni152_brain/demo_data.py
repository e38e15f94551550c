"""Build the MNI152 brain demo dataset: paired, labeled 3-D brain MR images with known deformations.

Nothing is downloaded. The anatomy is nilearn's bundled MNI152 2009 template (``--source nilearn``, the
default: T1 image, grey- and white-matter probability maps and brain mask at 2 mm), or, with
``--source brain_scan``, the one real subject in ``$TFREG_TEST_DATA/brain_scan/test_scan.npz``
(VoxelMorph's skull-stripped T1 with FreeSurfer labels; ``TFREG_TEST_DATA`` defaults to
``../shared/data`` next to the repository).

Each pair is that brain deformed twice, by two independent random transforms (a small affine part plus
a Gaussian-smoothed random displacement of a few mm), one giving the moving and one the fixed image;
each image then gets its own smooth multiplicative bias field and gamma change, so that registering
them is neither an identity nor a pure intensity match. Because both transforms are known, the exact
fixed-to-moving displacement is stored as ground truth.

Run from anywhere (paths are relative to this file unless ``--output`` is given)::

    python demos/mni152_brain/demo_data.py                 # 16 train, 4 valid, 4 test pairs
    python demos/mni152_brain/demo_data.py --overwrite     # rebuild an existing dataset
    python demos/mni152_brain/demo_data.py --source brain_scan

It writes DeepReg's paired NIfTI layout (docs: DeepReg contract, section 4)::

    demos/mni152_brain/dataset/
      {train,valid,test}/moving_images/caseNNNNNN.nii.gz   (X, Y, Z) float32 T1 intensities
      {train,valid,test}/fixed_images/caseNNNNNN.nii.gz    (X, Y, Z) float32
      {train,valid,test}/moving_labels/caseNNNNNN.nii.gz   (X, Y, Z, 3) uint8, channels LABEL_NAMES
      {train,valid,test}/fixed_labels/caseNNNNNN.nii.gz    (X, Y, Z, 3) uint8
      ground_truth/{train,valid,test}/caseNNNNNN.nii.gz    (X, Y, Z, 3) float32 fixed-to-moving DDF
      dataset.json                                         how the dataset was made

The default grid is 40 x 48 x 40 voxels of 4 mm (160 x 192 x 160 mm around the brain's 148 x 180 x
156 mm; a deformation may push the edge of the cerebellum out of view, as in real scans), a size at
which the demo's LocalNet trains at under a second per step of two pairs on two CPU cores. All files
carry the real geometry (4 mm spacing, the template's origin and LPS direction cosines).

Label channels (one-hot: every voxel is in at most one channel; background is all zeros), each the
warped tissue probability thresholded at > 0.5:

0. grey matter (cortex, cerebellar cortex and, for brain_scan, the deep grey nuclei);
1. white matter;
2. cerebrospinal fluid: for nilearn the brain mask minus grey and white matter (ventricles and the wider
   sulci); for brain_scan the ventricles and FreeSurfer's CSF label.

Ground-truth DDF convention (tfreg's and DeepReg's): in voxels of the moving image, ij(k) order, so
that ``moving(p + ddf(p))`` is the fixed image at voxel ``p`` (before the intensity changes).

The dataset is built in a temporary folder next to the destination and renamed into place when
complete, so an interrupted run never leaves a half-written ``dataset/``. An existing dataset is kept
unless ``--overwrite`` is given. Everything is seeded (``--seed``): a case depends only on the seed and
its case number, so the same command always writes the same voxels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from tfreg.data.geometry import ImageGeometry  # noqa: E402
from tfreg.data.image_io import save_image  # noqa: E402

DEFAULT_OUTPUT = os.path.join(DEMO_DIR, "dataset")
SOURCES = ("nilearn", "brain_scan")
SPLITS = ("train", "valid", "test")
LABEL_NAMES = ("grey_matter", "white_matter", "csf")
#: DeepReg's paired folder names (contract, section 4)
FOLDERS = ("moving_images", "fixed_images", "moving_labels", "fixed_labels")
GROUND_TRUTH = "ground_truth"

# FreeSurfer aseg label numbers of the brain_scan subject, grouped into the three channels.
BRAIN_SCAN_LABELS = {
    "grey_matter": (3, 42, 8, 47, 10, 11, 12, 13, 17, 18, 26, 49, 50, 51, 52, 53, 54, 58),
    "white_matter": (2, 41, 7, 46, 77, 251, 252, 253, 254, 255),
    "csf": (4, 5, 14, 15, 24, 43, 44),
}


@dataclass(frozen=True)
class Params:
    """What the generator draws from, in physical units so that results do not depend on the grid.

    Attributes:
        shape: output grid ``(X, Y, Z)`` voxels.
        spacing_mm: output voxel size, mm (isotropic).
        max_displacement_mm: largest norm of the non-linear displacement of one image, mm (the drawn
            field's peak is uniform in [0.5, 1] times this).
        smoothness_mm: Gaussian sigma, mm, of the smoothed white noise the displacement is made of.
        max_rotation_deg: each of the three rotation angles is uniform in +-this, degrees.
        max_scaling: each axis scale is uniform in 1 +- this.
        max_translation_mm: each translation component is uniform in +-this, mm.
        max_bias: the log bias field peaks at uniform [0.5, 1] times +-this (0.15 is about +-16 %).
        bias_smoothness_mm: Gaussian sigma, mm, of the bias field.
        max_log_gamma: the gamma exponent is exp(uniform(+-this)).
    """

    shape: Tuple[int, int, int] = (40, 48, 40)
    spacing_mm: float = 4.0
    max_displacement_mm: float = 8.0
    smoothness_mm: float = 16.0
    max_rotation_deg: float = 5.0
    max_scaling: float = 0.05
    max_translation_mm: float = 4.0
    max_bias: float = 0.15
    bias_smoothness_mm: float = 40.0
    max_log_gamma: float = 0.2


# ---------------------------------------------------------------------- anatomy
@dataclass
class Anatomy:
    """A brain on its source grid.

    Attributes:
        name: the source, ``nilearn`` or ``brain_scan``.
        image: ``(I, J, K)`` float32 T1 intensities, about [0, 1].
        labels: ``(I, J, K, 3)`` float32 tissue probabilities in [0, 1], channels :data:`LABEL_NAMES`,
            summing to at most 1 per voxel.
        geometry: the source grid's spacing (mm), origin (mm) and direction (LPS).
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    geometry: ImageGeometry


def geometry_from_ras_affine(affine: np.ndarray) -> ImageGeometry:
    """ITK (LPS) geometry of a NIfTI/nibabel voxel-to-RAS ``(4, 4)`` affine (spacing and origin in mm)."""
    lps = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)[:3, :]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    return ImageGeometry(spacing=spacing, origin=lps[:, 3], direction=lps[:, :3] / spacing)


def load_nilearn_anatomy() -> Anatomy:
    """nilearn's MNI152 2009 template at 2 mm, ``(99, 117, 95)`` voxels, from files bundled with nilearn."""
    try:
        from nilearn import datasets
    except ImportError as err:
        raise RuntimeError("the MNI152 demo needs nilearn (it bundles the template): pip install -e '.[demo]'") from err
    template = datasets.load_mni152_template(resolution=2)
    grey = datasets.load_mni152_gm_template(resolution=2).get_fdata(dtype=np.float32)
    white = datasets.load_mni152_wm_template(resolution=2).get_fdata(dtype=np.float32)
    mask = datasets.load_mni152_brain_mask(resolution=2).get_fdata(dtype=np.float32)
    # nilearn has no CSF map: what the brain mask holds beyond grey and white matter is CSF
    csf = np.clip(mask - grey - white, 0.0, 1.0)
    labels = np.stack([grey, white, csf], axis=-1) * mask[..., None]
    image = np.clip(template.get_fdata(dtype=np.float32), 0.0, None)
    return Anatomy("nilearn", image, labels.astype(np.float32), geometry_from_ras_affine(template.affine))


def default_data_root() -> str:
    """``$TFREG_TEST_DATA``, else ``../shared/data`` relative to the repository root."""
    return os.environ.get("TFREG_TEST_DATA", os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


def brain_scan_path(data_root: Optional[str] = None) -> str:
    """Path of the optional real subject, ``<data root>/brain_scan/test_scan.npz``."""
    return os.path.join(data_root or default_data_root(), "brain_scan", "test_scan.npz")


def load_brain_scan_anatomy(data_root: Optional[str] = None) -> Anatomy:
    """The brain_scan subject: ``vol`` 160 x 192 x 224 at 1 mm (no header: identity direction, origin 0)."""
    path = brain_scan_path(data_root)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--source brain_scan needs {path}; set TFREG_TEST_DATA to the folder holding brain_scan/"
        )
    with np.load(path) as archive:
        image = archive["vol"].astype(np.float32)
        seg = np.rint(archive["seg"]).astype(np.int32)
    labels = np.stack([np.isin(seg, BRAIN_SCAN_LABELS[name]) for name in LABEL_NAMES], axis=-1)
    return Anatomy("brain_scan", image, labels.astype(np.float32), ImageGeometry.identity(3))


def load_anatomy(source: str, data_root: Optional[str] = None) -> Anatomy:
    """The anatomy named by ``source`` (one of :data:`SOURCES`)."""
    if source == "nilearn":
        return load_nilearn_anatomy()
    if source == "brain_scan":
        return load_brain_scan_anatomy(data_root)
    raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")


# ---------------------------------------------------------------------- output grid
@dataclass
class OutputGrid:
    """The demo grid inside the source grid, and the source prepared for sampling on it.

    Attributes:
        shape: ``(X, Y, Z)`` output voxels.
        start: ``(3,)`` source voxel index of output voxel ``(0, 0, 0)``.
        step: ``(3,)`` source voxels per output voxel.
        geometry: the output grid's geometry (written into every file).
        image: the source image smoothed against aliasing, ``(I, J, K)`` float32.
        labels: the source label probabilities smoothed likewise, ``(I, J, K, 3)`` float32.
    """

    shape: Tuple[int, int, int]
    start: np.ndarray
    step: np.ndarray
    geometry: ImageGeometry
    image: np.ndarray
    labels: np.ndarray


def make_output_grid(anatomy: Anatomy, shape: Sequence[int], spacing_mm: float) -> OutputGrid:
    """A ``shape`` grid of ``spacing_mm`` voxels centred on the brain's bounding box.

    Downsampling by ``step`` source voxels per output voxel would alias the cortex's fine folds, so the
    source is first smoothed with the usual Gaussian of sigma ``0.5 * sqrt(step**2 - 1)`` source voxels.
    """
    shape = tuple(int(s) for s in shape)
    step = float(spacing_mm) / np.asarray(anatomy.geometry.spacing, dtype=np.float64)
    foreground = np.argwhere(anatomy.image > 0.02 * float(anatomy.image.max()))
    centre = (foreground.min(axis=0) + foreground.max(axis=0)) / 2.0
    start = centre - step * (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    origin = anatomy.geometry.index_to_physical() @ np.append(start, 1.0)
    geometry = ImageGeometry(
        spacing=step * np.asarray(anatomy.geometry.spacing), origin=origin[:3], direction=anatomy.geometry.direction
    )
    sigma = 0.5 * np.sqrt(np.maximum(step**2 - 1.0, 0.0))
    image = ndimage.gaussian_filter(anatomy.image, sigma, mode="constant")
    labels = np.stack(
        [
            ndimage.gaussian_filter(anatomy.labels[..., c], sigma, mode="constant")
            for c in range(anatomy.labels.shape[-1])
        ],
        axis=-1,
    )
    return OutputGrid(shape, start, step, geometry, image.astype(np.float32), labels.astype(np.float32))


def grid_points(shape: Sequence[int]) -> np.ndarray:
    """``(3, N)`` float64 voxel indices of a ``shape`` grid, C order (reshape to ``(3, *shape)``)."""
    return np.indices(tuple(shape), dtype=np.float64).reshape(len(shape), -1)


# ---------------------------------------------------------------------- transforms
@dataclass
class RandomTransform:
    """``phi(p) = centre + matrix @ (p - centre) + translation + field(p)``, output voxels to output voxels.

    ``phi`` maps a voxel of the deformed image to where it samples the undeformed brain. The field is
    stored on the output grid and interpolated linearly in between.

    Attributes:
        matrix: ``(3, 3)`` rotation times scaling.
        translation: ``(3,)`` voxels.
        centre: ``(3,)`` voxel index the affine part rotates about (the grid centre).
        field: ``(3, X, Y, Z)`` non-linear displacement, voxels.
    """

    matrix: np.ndarray
    translation: np.ndarray
    centre: np.ndarray
    field: np.ndarray

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """``(3, N)`` field at ``(3, N)`` voxel coordinates (linear, edge values held outside the grid)."""
        return np.stack([ndimage.map_coordinates(self.field[c], points, order=1, mode="nearest") for c in range(3)])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``phi`` at ``(3, N)`` voxel coordinates, ``(3, N)``."""
        c = self.centre[:, None]
        return c + self.matrix @ (points - c) + self.translation[:, None] + self.displacement(points)

    def inverse(self, targets: np.ndarray, tolerance: float = 1e-4, max_iterations: int = 100) -> np.ndarray:
        """``phi^-1`` at ``(3, N)`` voxel coordinates, by the fixed-point iteration
        ``y <- centre + matrix^-1 (target - translation - field(y) - centre)``.

        It converges because the field is smooth (its Jacobian is well below 1 in norm after
        ``matrix^-1``); the result satisfies ``|phi(y) - target| < tolerance`` voxels.

        Raises:
            RuntimeError: if it did not converge (a field too rough for its smoothness).
        """
        c = self.centre[:, None]
        inv = np.linalg.inv(self.matrix)
        base = targets - self.translation[:, None] - c
        y = c + inv @ base
        for _ in range(max_iterations):
            y_next = c + inv @ (base - self.displacement(y))
            change = float(np.abs(y_next - y).max())
            y = y_next
            if change < tolerance / 10:
                break
        residual = float(np.abs(self(y) - targets).max())
        if residual > tolerance:
            raise RuntimeError(f"inverting the random deformation did not converge (residual {residual:.2g} voxels)")
        return y


def rotation_matrix(angles: Sequence[float]) -> np.ndarray:
    """``(3, 3)`` rotation by ``angles`` (radians) about axes 0, 1 and 2, applied in that order."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        a, b = [i for i in range(3) if i != axis]
        rot = np.eye(3)
        rot[a, a] = rot[b, b] = np.cos(angle)
        rot[a, b], rot[b, a] = -np.sin(angle), np.sin(angle)
        matrix = rot @ matrix
    return matrix


def smooth_noise(rng: np.random.Generator, shape: Sequence[int], sigma_voxels: float) -> np.ndarray:
    """Gaussian-smoothed white noise of ``shape``, scaled to a peak magnitude of 1."""
    noise = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)), sigma_voxels, mode="reflect")
    return noise / max(float(np.abs(noise).max()), 1e-12)


def random_transform(rng: np.random.Generator, params: Params) -> RandomTransform:
    """A random small affine plus smooth non-linear deformation (see :class:`Params` for the ranges)."""
    shape = params.shape
    spacing = float(params.spacing_mm)
    angles = np.deg2rad(rng.uniform(-1.0, 1.0, 3) * params.max_rotation_deg)
    scales = 1.0 + rng.uniform(-1.0, 1.0, 3) * params.max_scaling
    translation = rng.uniform(-1.0, 1.0, 3) * params.max_translation_mm / spacing
    sigma = params.smoothness_mm / spacing
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect") for _ in range(3)])
    peak = float(np.sqrt((field**2).sum(axis=0)).max())
    field *= rng.uniform(0.5, 1.0) * params.max_displacement_mm / spacing / max(peak, 1e-12)
    centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    return RandomTransform(rotation_matrix(angles) @ np.diag(scales), translation, centre, field)


def sample_source(volume: np.ndarray, grid: OutputGrid, points: np.ndarray) -> np.ndarray:
    """``volume`` (a source-grid array) at output-voxel coordinates ``(3, N)``: ``(N,)``, 0 outside."""
    source = grid.start[:, None] + grid.step[:, None] * points
    return ndimage.map_coordinates(volume, source, order=1, mode="constant", cval=0.0)


def deform(grid: OutputGrid, transform: RandomTransform) -> Tuple[np.ndarray, np.ndarray]:
    """The brain deformed by ``transform``: image ``(X, Y, Z)`` and label probabilities ``(X, Y, Z, 3)``."""
    points = transform(grid_points(grid.shape))
    image = sample_source(grid.image, grid, points).reshape(grid.shape)
    labels = np.stack(
        [sample_source(grid.labels[..., c], grid, points).reshape(grid.shape) for c in range(grid.labels.shape[-1])],
        axis=-1,
    )
    return image.astype(np.float32), labels.astype(np.float32)


def fixed_to_moving_ddf(moving: RandomTransform, fixed: RandomTransform, shape: Sequence[int]) -> np.ndarray:
    """``(X, Y, Z, 3)`` DDF with ``moving(p + ddf(p)) == fixed(p)``: ``phi_m^-1(phi_f(p)) - p``, voxels."""
    points = grid_points(shape)
    target = moving.inverse(fixed(points))
    return np.moveaxis((target - points).reshape((3,) + tuple(shape)), 0, -1).astype(np.float32)


def change_intensity(image: np.ndarray, rng: np.random.Generator, params: Params) -> np.ndarray:
    """``image ** gamma * exp(bias)``: a random gamma and a smooth multiplicative bias field, ``(X, Y, Z)``."""
    gamma = float(np.exp(rng.uniform(-1.0, 1.0) * params.max_log_gamma))
    bias = smooth_noise(rng, image.shape, params.bias_smoothness_mm / params.spacing_mm)
    bias *= rng.uniform(0.5, 1.0) * params.max_bias
    return (np.clip(image, 0.0, None) ** gamma * np.exp(bias)).astype(np.float32)


def one_hot(probabilities: np.ndarray) -> np.ndarray:
    """``(X, Y, Z, L)`` uint8 masks ``probability > 0.5``; the tissue probabilities sum to at most 1,
    so no voxel is in two channels."""
    return (probabilities > 0.5).astype(np.uint8)


def make_pair(grid: OutputGrid, params: Params, seed: int, case: int) -> Dict[str, np.ndarray]:
    """One pair, determined by ``(seed, case)`` only.

    Returns:
        dict of ``moving_image``, ``fixed_image`` ``(X, Y, Z)`` float32 (intensity-changed);
        ``moving_label``, ``fixed_label`` ``(X, Y, Z, 3)`` uint8 one-hot; ``ddf`` ``(X, Y, Z, 3)`` float32
        fixed-to-moving voxels; ``moving_clean``, ``fixed_clean`` (before the intensity change) and the
        two :class:`RandomTransform` under ``moving_transform`` and ``fixed_transform``.
    """
    rng = np.random.default_rng([int(seed), int(case)])
    moving_transform = random_transform(rng, params)
    fixed_transform = random_transform(rng, params)
    moving_clean, moving_prob = deform(grid, moving_transform)
    fixed_clean, fixed_prob = deform(grid, fixed_transform)
    return {
        "moving_image": change_intensity(moving_clean, rng, params),
        "fixed_image": change_intensity(fixed_clean, rng, params),
        "moving_label": one_hot(moving_prob),
        "fixed_label": one_hot(fixed_prob),
        "ddf": fixed_to_moving_ddf(moving_transform, fixed_transform, grid.shape),
        "moving_clean": moving_clean,
        "fixed_clean": fixed_clean,
        "moving_transform": moving_transform,
        "fixed_transform": fixed_transform,
    }


# ---------------------------------------------------------------------- writing
def case_name(case: int) -> str:
    """DeepReg's file stem, ``case000012``."""
    return f"case{case:06d}"


def _write_split(root: str, split: str, cases: Sequence[int], grid: OutputGrid, params: Params, seed: int) -> None:
    for case in cases:
        pair = make_pair(grid, params, seed, case)
        name = case_name(case) + ".nii.gz"
        for folder, key in zip(FOLDERS, ("moving_image", "fixed_image", "moving_label", "fixed_label")):
            save_image(pair[key], os.path.join(root, split, folder, name), grid.geometry)
        save_image(pair["ddf"], os.path.join(root, GROUND_TRUTH, split, name), grid.geometry)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def build_dataset(
    output_dir: str = DEFAULT_OUTPUT,
    source: str = "nilearn",
    params: Params = Params(),
    counts: Optional[Dict[str, int]] = None,
    seed: int = 0,
    overwrite: bool = False,
    data_root: Optional[str] = None,
    verbose: bool = True,
) -> Dict:
    """Write the dataset to ``output_dir`` atomically and return what ``dataset.json`` records.

    Args:
        output_dir: destination folder; must not exist unless ``overwrite``.
        source: ``nilearn`` (default) or ``brain_scan``.
        params: grid and random-deformation ranges.
        counts: pairs per split, default ``{"train": 16, "valid": 4, "test": 4}``. Cases are numbered
            on from split to split (train 0-15, valid 16-19, test 20-23).
        seed: the random seed; case ``n`` uses ``numpy.random.default_rng([seed, n])``.
        overwrite: replace an existing ``output_dir`` (only once the new one is complete).
        data_root: folder holding ``brain_scan/`` (default ``$TFREG_TEST_DATA`` or ``../shared/data``).
        verbose: print progress and a summary.

    Raises:
        FileExistsError: ``output_dir`` exists and ``overwrite`` is False.
    """
    start_time = time.time()
    counts = dict(counts or {"train": 16, "valid": 4, "test": 4})
    output_dir = os.path.abspath(output_dir)
    if os.path.lexists(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} already exists; pass --overwrite to rebuild it")
    anatomy = load_anatomy(source, data_root)
    grid = make_output_grid(anatomy, params.shape, params.spacing_mm)

    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    # same folder as the destination, so the final rename stays on one file system (and is atomic)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(output_dir) + ".partial-", dir=parent)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the dataset is not
        cases, first = {}, 0
        for split in SPLITS:
            cases[split] = list(range(first, first + int(counts.get(split, 0))))
            first += len(cases[split])
            if verbose:
                print(f"[demo_data] {split}: {len(cases[split])} pairs", flush=True)
            _write_split(tmp, split, cases[split], grid, params, seed)
        info = {
            "source": anatomy.name,
            "source_description": (
                "nilearn MNI152 2009 template (2 mm) with its grey/white-matter probability maps and brain mask"
                if anatomy.name == "nilearn"
                else "brain_scan/test_scan.npz: VoxelMorph's skull-stripped T1 with FreeSurfer aseg labels (1 mm)"
            ),
            "seed": int(seed),
            "shape": list(grid.shape),
            "spacing_mm": list(grid.geometry.spacing),
            "geometry": grid.geometry.to_dict(),
            "labels": list(LABEL_NAMES),
            "cases": {split: [case_name(c) for c in cases[split]] for split in SPLITS},
            "params": {
                key: (list(value) if isinstance(value, tuple) else value) for key, value in vars(params).items()
            },
            "ground_truth": (
                f"{GROUND_TRUTH}/<split>/<case>.nii.gz: (X, Y, Z, 3) fixed-to-moving DDF in moving voxels, "
                "moving(p + ddf(p)) = fixed(p) before the intensity changes"
            ),
        }
        with open(os.path.join(tmp, "dataset.json"), "w", encoding="utf-8") as stream:
            json.dump(info, stream, indent=2)
        _move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        _print_summary(output_dir, info, time.time() - start_time)
    return info


def _move_into_place(tmp: str, output_dir: str) -> None:
    """Rename the complete ``tmp`` to ``output_dir``, replacing an existing one only after that succeeds."""
    if not os.path.lexists(output_dir):
        os.rename(tmp, output_dir)
        return
    old = tempfile.mkdtemp(prefix=os.path.basename(output_dir) + ".old-", dir=os.path.dirname(output_dir))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(output_dir, old)
    try:
        os.rename(tmp, output_dir)
    except BaseException:
        os.rename(old, output_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _print_summary(output_dir: str, info: Dict, seconds: float) -> None:
    shape = " x ".join(str(s) for s in info["shape"])
    spacing = " x ".join(f"{s:g}" for s in info["spacing_mm"])
    print(f"[demo_data] wrote {output_dir} in {seconds:.1f} s (source: {info['source']}, seed {info['seed']})")
    print(
        f"[demo_data]   images {shape} voxels of {spacing} mm; labels {shape} x {len(info['labels'])}: "
        f"{', '.join(info['labels'])}"
    )
    for split in SPLITS:
        names = info["cases"][split]
        if names:
            print(f"[demo_data]   {split}/{{{','.join(FOLDERS)}}}/ {names[0]} .. {names[-1]} ({len(names)} pairs)")
    print(f"[demo_data]   {GROUND_TRUTH}/<split>/: fixed-to-moving DDFs; dataset.json: how it was made")


# ---------------------------------------------------------------------- command line
def main(argv: Optional[Sequence[str]] = None) -> int:
    defaults = Params()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="dataset folder (default: %(default)s)")
    parser.add_argument("--source", choices=SOURCES, default="nilearn", help="anatomy (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=list(defaults.shape),
        metavar=("X", "Y", "Z"),
        help="output voxels (default: %(default)s)",
    )
    parser.add_argument(
        "--spacing", type=float, default=defaults.spacing_mm, help="output voxel size, mm (default: %(default)s)"
    )
    parser.add_argument(
        "--max_displacement",
        type=float,
        default=defaults.max_displacement_mm,
        help="peak non-linear displacement per image, mm (default: %(default)s)",
    )
    for split, n in (("train", 16), ("valid", 4), ("test", 4)):
        parser.add_argument(f"--num_{split}", type=int, default=n, help=f"{split} pairs (default: %(default)s)")
    args = parser.parse_args(argv)
    params = Params(shape=tuple(args.shape), spacing_mm=args.spacing, max_displacement_mm=args.max_displacement)
    counts = {"train": args.num_train, "valid": args.num_valid, "test": args.num_test}
    try:
        build_dataset(args.output, args.source, params, counts, args.seed, args.overwrite)
    except (FileExistsError, FileNotFoundError, RuntimeError) as err:
        print(f"[demo_data] {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
