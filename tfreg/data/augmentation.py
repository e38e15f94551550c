"""Random spatial augmentation of training batches: ``affine`` and ``ddf`` (registry category ``da_class``).

Both follow DeepReg's ``RandomAffineTransform3D`` / ``RandomDDFTransform3D`` (constructor arguments,
defaults, numerics) in 2-D and 3-D, with one deliberate difference (contract section 11): **every batch
draws new parameters**. DeepReg drew them with NumPy while ``tf.data`` traced the mapped function, so one
set of transforms was frozen into the graph and reused for every batch of a run.

Each augmentation is called on a batched dict (``moving_image`` ``(B, *moving_image_size)``,
``fixed_image`` ``(B, *fixed_image_size)``, optional ``moving_label`` / ``fixed_label`` with their image's
shape, ``indices``, optionally a trailing channel axis on images and labels) and returns a new dict with
the same keys and shapes. The moving and fixed images get independent transforms; each label gets its
own image's transform (the same ``theta`` or DDF). Everything, labels included, is resampled with linear
interpolation and zero boundary (:func:`tfreg.ops.warp.resample`), as in DeepReg: labels stay in
``[0, 1]`` but become soft at edges. ``indices`` and any other key pass through unchanged.

Landmarks (tfreg's addition; the data loader's ``landmarks: true``): the ROI maps ``moving_roi`` /
``fixed_roi`` are resampled like labels, and the landmarks ``moving_landmarks`` / ``fixed_landmarks``
``(B, L, ndim)`` (model voxels) are moved to where their point lies in the transformed image: the image
becomes ``image(T(x))``, so a landmark ``p`` moves to ``T^-1(p)`` (:meth:`RandomTransformation.transform_points`;
padding rows, ``landmark_mask == 0``, stay 0). ``affine`` does this exactly. ``ddf`` would need the inverse of
a dense field and refuses landmarks (``supports_landmarks = False``), as does any augmentation class that
does not declare ``supports_landmarks = True``: :func:`tfreg.data.pipeline.build_dataset` reports it.

``affine`` (``scale``): the ``ndim + 1`` corners of ``[-1, 1]^ndim`` used by DeepReg, in 3-D
``(-1,-1,-1), (-1,-1,1), (-1,1,-1), (1,-1,-1)`` and in 2-D ``(-1,-1), (-1,1), (1,-1)``, are multiplied
coordinate-wise by factors ``~ U[1 - scale, 1]``; ``theta`` (``(ndim + 1, ndim)``) is the least-squares
map of the homogeneous original corners onto the scaled ones (``ndim + 1`` points, so the fit is exact);
the image is resampled at ``[i, j, k, 1] @ theta`` in **voxel-index coordinates about voxel 0**, exactly as
DeepReg did (the corners live in ``[-1, 1]`` but ``theta`` is applied to voxel indices, so the transform is
a shrink/shear about voxel 0 with a sub-voxel translation; reproduced on purpose). ``scale = 0`` gives
the identity.

``ddf`` (``field_strength``, ``low_res_size``): per sample and axis ``sigma ~ U[0, field_strength]``,
a field ``sigma * N(0, 1)`` of shape ``(*low_res_size, ndim)`` is resized to the image size with
:func:`tfreg.ops.resize.resize` (DeepReg's ``Resize3d`` numerics), added to the reference grid, and the
image resampled there. The default ``low_res_size=(1, 1, 1)`` is a random translation per sample.
``field_strength = 0`` gives the identity.

Randomness and seeds
--------------------
Each augmentation owns a ``tf.random.Generator`` (on the CPU, where ``tf.data`` runs), seeded with
``seed`` (``None``: non-deterministic). Every call advances it by exactly one op (``make_seeds``), which
yields a fresh stateless seed for that batch; all of the batch's numbers (moving and fixed) are then drawn
with stateless ops from that seed. Consequences:

- each call, eager or inside ``dataset.map`` (graph mode), gets new parameters: consecutive batches and
  successive epochs differ;
- the same ``seed`` gives the same sequence of per-call seeds, hence the same sequence of transforms,
  across runs and processes;
- with ``num_parallel_calls=1`` the k-th batch always receives the k-th transform, so a seeded run is
  reproducible batch for batch. With ``num_parallel_calls > 1`` (or AUTOTUNE, the pipeline's default) the
  calls may execute out of order: the run still uses the same set of transforms, and each call's seed is
  taken atomically (moving and fixed of one batch are never mixed with another call's numbers), but
  which batch gets which transform can vary between runs. Use ``num_parallel_calls=1`` for bit-exact
  reproducibility, or call :meth:`RandomTransformation.transform_with_seed` with a seed of your own
  (e.g. from ``dataset.enumerate()``), which is a pure function of its inputs.

Deterministic building blocks, also used by the tests: :func:`corners`, :func:`fit_affine`,
:func:`transform_with_theta`, :func:`transform_with_ddf`.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfreg.ops.affine import warp_grid
from tfreg.ops.grid import get_reference_grid
from tfreg.ops.resize import resize
from tfreg.ops.warp import resample
from tfreg.registry import REGISTRY

IMAGE_KEYS = ("moving_image", "fixed_image")
LABEL_KEYS = ("moving_label", "fixed_label")
#: Mask of the padded landmark rows (1 = landmark), written by the data loaders.
LANDMARK_MASK_KEY = "landmark_mask"


def _check_size(size, name: str) -> Tuple[int, ...]:
    try:
        dims = tuple(size)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of 2 or 3 positive ints, got {size!r}") from None
    if len(dims) not in (2, 3) or any(isinstance(d, bool) or not hasattr(d, "__index__") or int(d) < 1 for d in dims):
        raise ValueError(f"{name} must be a sequence of 2 or 3 positive ints, got {size!r}")
    return tuple(int(d) for d in dims)


def _check_number(value, name: str, low: float, high: Optional[float] = None) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def corners(ndim: int) -> np.ndarray:
    """DeepReg's ``ndim + 1`` corners of ``[-1, 1]^ndim``: all -1, then +1 on the last axis, ..., on the first.

    Returns:
        ``(ndim + 1, ndim)`` float64; 3-D: ``(-1,-1,-1), (-1,-1,1), (-1,1,-1), (1,-1,-1)``.
    """
    out = -np.ones((ndim + 1, ndim))
    for row, axis in enumerate(range(ndim - 1, -1, -1), start=1):
        out[row, axis] = 1.0
    return out


def _fit_matrix(ndim: int) -> np.ndarray:
    """``P`` with ``theta = P @ new`` the least-squares solution of ``[corners, 1] @ theta = new``."""
    old = np.concatenate([corners(ndim), np.ones((ndim + 1, 1))], axis=1)  # (ndim + 1, ndim + 1)
    # The exact inverse has entries in multiples of 1/2: snap away the float64 round-off, so that
    # factors of exactly 1 (scale 0) give exactly the identity (a translation of 1e-16 voxel would
    # push the first plane out of the image under the zero boundary).
    return np.round(np.linalg.pinv(old) * 2**20) / 2**20


def fit_affine(factors):
    """``theta`` mapping DeepReg's corners onto the corners multiplied by ``factors``.

    Args:
        factors: ``(B, ndim + 1, ndim)`` per-corner, per-coordinate factors (``U[1 - scale, 1]`` in
            :class:`RandomAffineTransform`).

    Returns:
        float32 ``(B, ndim + 1, ndim)``: the least-squares (here exact) solution of
        ``[corners, 1] @ theta = corners * factors``, as ``np.linalg.lstsq`` would give.
    """
    factors = tf.convert_to_tensor(factors, tf.float32)
    ndim = factors.shape[-1]
    new = tf.constant(corners(ndim), tf.float32)[None] * factors  # (B, ndim + 1, ndim)
    fit = tf.constant(_fit_matrix(ndim), tf.float32)  # (ndim + 1, ndim + 1)
    # Broadcast multiply-add rather than matmul (no TF32 on GPUs): theta[b] = fit @ new[b].
    return tf.reduce_sum(fit[None, :, :, None] * new[:, None, :, :], axis=2)


def transform_with_theta(image, theta, interpolation: str = "linear"):
    """Resample ``image`` at ``[grid, 1] @ theta`` (voxel indices about voxel 0), zero outside.

    Args:
        image: ``(B, *S)`` or ``(B, *S, C)``.
        theta: ``(B, ndim + 1, ndim)`` (DeepReg's convention, see :mod:`tfreg.ops.affine`).

    Returns:
        Same shape as ``image``, float.
    """
    theta = tf.convert_to_tensor(theta, tf.float32)
    ndim = theta.shape[-1]
    grid = get_reference_grid(tuple(image.shape[1 : ndim + 1]))
    return resample(image, warp_grid(grid, theta), interpolation=interpolation, boundary="zero")


def transform_with_ddf(image, ddf, interpolation: str = "linear"):
    """Resample ``image`` at ``grid + ddf`` (voxels), zero outside.

    Args:
        image: ``(B, *S)`` or ``(B, *S, C)``.
        ddf: ``(B, *S, ndim)``.

    Returns:
        Same shape as ``image``, float.
    """
    ddf = tf.convert_to_tensor(ddf, tf.float32)
    ndim = ddf.shape[-1]
    grid = get_reference_grid(tuple(image.shape[1 : ndim + 1]))
    return resample(image, grid[None] + ddf, interpolation=interpolation, boundary="zero")


class RandomTransformation:
    """Base class: a seeded random spatial transform of moving and fixed images (and their labels).

    Subclasses implement :meth:`sample_params` (stateless, from a seed) and :meth:`apply`, and, to transform
    landmarks, :meth:`transform_points` with ``supports_landmarks = True``.

    Args:
        moving_image_size: spatial size of the moving images ``(d0, d1[, d2])``, voxels (the pipeline passes
            the loader's).
        fixed_image_size: spatial size of the fixed images, same length.
        batch_size: the batch size (the pipeline passes ``train.preprocess.batch_size``).
        name: a name for messages.
        seed: seed of the augmentation's random generator; None draws a non-deterministic one.
    """

    #: whether :meth:`transform_points` is implemented (batches with landmarks are refused otherwise)
    supports_landmarks = False

    def __init__(
        self,
        moving_image_size: Sequence[int],
        fixed_image_size: Sequence[int],
        batch_size: int,
        name: str = "RandomTransformation",
        seed: Optional[int] = None,
    ):
        self.moving_image_size = _check_size(moving_image_size, "moving_image_size")
        self.fixed_image_size = _check_size(fixed_image_size, "fixed_image_size")
        if len(self.moving_image_size) != len(self.fixed_image_size):
            raise ValueError(
                f"moving_image_size {self.moving_image_size} and fixed_image_size {self.fixed_image_size} must "
                f"have the same number of dimensions"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        self.ndim = len(self.moving_image_size)
        self.batch_size = int(batch_size)
        self.name = name
        self.seed = seed
        # On the CPU: tf.data functions run there and cannot use a resource placed on a GPU.
        with tf.device("/CPU:0"):
            if seed is None:
                self._rng = tf.random.Generator.from_non_deterministic_state()
            else:
                self._rng = tf.random.Generator.from_seed(int(seed))

    # -------------------------------------------------------------- to implement
    def sample_params(self, seed, batch, image_size):  # pragma: no cover - abstract
        """Random parameters for ``batch`` images of ``image_size`` from a stateless ``seed`` (int32/64 ``(2,)``)."""
        raise NotImplementedError

    def apply(self, image, params):  # pragma: no cover - abstract
        """``image`` transformed with ``params``."""
        raise NotImplementedError

    def transform_points(self, points, params):
        """Where points ``(B, L, ndim)`` (voxels) of an image lie in ``apply(image, params)``: ``T^-1(p)``."""
        raise NotImplementedError(
            f"{self.name} ({type(self).__name__}) cannot move landmarks; use an augmentation with "
            "supports_landmarks = True (affine) or none"
        )

    # -------------------------------------------------------------- calling
    def next_seed(self):
        """A fresh stateless seed ``(2,)`` int64: advances the generator by exactly one op."""
        return self._rng.make_seeds(1)[:, 0]

    def transform_with_seed(self, inputs: Dict[str, tf.Tensor], seed) -> Dict[str, tf.Tensor]:
        """Transform a batch with parameters drawn from the stateless ``seed`` (a pure function)."""
        for key in IMAGE_KEYS:
            if key not in inputs:
                raise ValueError(f"{self.name}: the batch has no {key!r} (keys: {sorted(inputs)})")
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        moving_seed, fixed_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        batch = tf.shape(inputs["moving_image"])[0]
        out = dict(inputs)
        for prefix, sub_seed, size in (
            ("moving", moving_seed, self.moving_image_size),
            ("fixed", fixed_seed, self.fixed_image_size),
        ):
            image = inputs[f"{prefix}_image"]
            if tuple(image.shape[1 : self.ndim + 1]) != size:
                raise ValueError(
                    f"{self.name}: {prefix}_image has shape {tuple(image.shape)}, expected (batch, *{size})"
                )
            params = self.sample_params(sub_seed, batch, size)
            out[f"{prefix}_image"] = tf.cast(self.apply(image, params), image.dtype)
            for key in (f"{prefix}_label", f"{prefix}_roi"):
                if key in inputs:
                    out[key] = tf.cast(self.apply(inputs[key], params), inputs[key].dtype)
            if f"{prefix}_landmarks" in inputs:
                points = inputs[f"{prefix}_landmarks"]
                moved = tf.cast(self.transform_points(tf.cast(points, tf.float32), params), points.dtype)
                if LANDMARK_MASK_KEY in inputs:  # padding rows stay 0
                    moved = moved * tf.cast(inputs[LANDMARK_MASK_KEY], moved.dtype)[..., None]
                out[f"{prefix}_landmarks"] = moved
        return out

    def __call__(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Transform a batch with new random parameters (see the module docstring on seeds)."""
        return self.transform_with_seed(inputs, self.next_seed())

    def get_config(self) -> dict:
        return dict(
            moving_image_size=self.moving_image_size,
            fixed_image_size=self.fixed_image_size,
            batch_size=self.batch_size,
            name=self.name,
            seed=self.seed,
        )


@REGISTRY.register_data_augmentation(name="affine")
class RandomAffineTransform(RandomTransformation):
    """DeepReg's ``RandomAffineTransform3D`` (2-D and 3-D), fresh parameters per batch; see the module docstring.

    Args:
        scale: in [0, 1]; the corners of ``[-1, 1]^ndim`` are scaled by factors drawn from ``U[1 - scale, 1]``
            (0: the identity).
        moving_image_size, fixed_image_size, batch_size, name, seed: see :class:`RandomTransformation`.
    """

    supports_landmarks = True  # the inverse of an affine map is exact

    def __init__(
        self,
        moving_image_size: Sequence[int],
        fixed_image_size: Sequence[int],
        batch_size: int,
        scale: float = 0.1,
        name: str = "RandomAffineTransform",
        seed: Optional[int] = None,
    ):
        super().__init__(moving_image_size, fixed_image_size, batch_size, name=name, seed=seed)
        self.scale = _check_number(scale, "scale", 0.0, 1.0)

    def sample_params(self, seed, batch, image_size):
        """``theta`` ``(batch, ndim + 1, ndim)`` from corner factors ``~ U[1 - scale, 1]``."""
        shape = tf.stack([batch, self.ndim + 1, self.ndim])
        factors = tf.random.stateless_uniform(shape, seed, minval=1.0 - self.scale, maxval=1.0, dtype=tf.float32)
        return fit_affine(factors)

    def apply(self, image, params):
        return transform_with_theta(image, params)

    def transform_points(self, points, params):
        """``x`` with ``[x, 1] @ theta = p`` for each point ``p`` ``(B, L, ndim)``: ``x = (p - b) A^-1``."""
        ndim = self.ndim
        matrix, offset = params[:, :ndim, :], params[:, ndim, :]  # x @ matrix + offset = p
        # x^T solves matrix^T x^T = (p - offset)^T
        rhs = tf.transpose(points - offset[:, None, :], [0, 2, 1])
        return tf.transpose(tf.linalg.solve(tf.transpose(matrix, [0, 2, 1]), rhs), [0, 2, 1])

    def get_config(self) -> dict:
        return dict(super().get_config(), scale=self.scale)


@REGISTRY.register_data_augmentation(name="ddf")
class RandomDDFTransform(RandomTransformation):
    """DeepReg's ``RandomDDFTransform3D`` (2-D and 3-D), fresh parameters per batch; see the module docstring.

    Args:
        field_strength: >= 0, voxels; per sample and axis the field's scale is drawn from
            ``U[0, field_strength]`` (0: the identity).
        low_res_size: spatial size of the random field before it is resized to the image; None: ``(1, 1[, 1])``
            (DeepReg's default, a random translation per sample).
        moving_image_size, fixed_image_size, batch_size, name, seed: see :class:`RandomTransformation`.
    """

    def __init__(
        self,
        moving_image_size: Sequence[int],
        fixed_image_size: Sequence[int],
        batch_size: int,
        field_strength: float = 1,
        low_res_size: Optional[Sequence[int]] = None,
        name: str = "RandomDDFTransform",
        seed: Optional[int] = None,
    ):
        super().__init__(moving_image_size, fixed_image_size, batch_size, name=name, seed=seed)
        self.field_strength = _check_number(field_strength, "field_strength", 0.0)
        if low_res_size is None:  # DeepReg's (1, 1, 1), in the images' dimensionality
            low_res_size = (1,) * self.ndim
        low_res_size = _check_size(low_res_size, "low_res_size")
        if len(low_res_size) != self.ndim:
            raise ValueError(
                f"low_res_size {low_res_size} must have {self.ndim} entries, like the image sizes "
                f"{self.moving_image_size}"
            )
        self.low_res_size = low_res_size

    def sample_params(self, seed, batch, image_size):
        """DDF ``(batch, *image_size, ndim)``: ``U[0, fs]`` per sample and axis times ``N(0, 1)``, resized."""
        strength_seed, field_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        ones = [1] * self.ndim
        strength = tf.random.stateless_uniform(
            tf.stack([batch] + ones + [self.ndim]), strength_seed, minval=0.0, maxval=self.field_strength
        )
        noise = tf.random.stateless_normal(tf.stack([batch, *self.low_res_size, self.ndim]), field_seed)
        low_res = strength * noise
        low_res = tf.ensure_shape(low_res, [None, *self.low_res_size, self.ndim])
        return resize(low_res, image_size)

    def apply(self, image, params):
        return transform_with_ddf(image, params)

    def get_config(self) -> dict:
        return dict(super().get_config(), field_strength=self.field_strength, low_res_size=self.low_res_size)


# DeepReg's class names, for users' code that refers to them.
RandomAffineTransform3D = RandomAffineTransform
RandomDDFTransform3D = RandomDDFTransform

__all__ = [
    "RandomTransformation",
    "RandomAffineTransform",
    "RandomDDFTransform",
    "RandomAffineTransform3D",
    "RandomDDFTransform3D",
    "corners",
    "fit_affine",
    "transform_with_theta",
    "transform_with_ddf",
]
