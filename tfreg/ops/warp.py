"""Resampling an image at voxel coordinates, and warping by a dense displacement field (``keras.ops`` only).

Conventions (2-D and 3-D, batch-first, channels-last):

- images are ``(batch, *spatial, channels)`` or ``(batch, *spatial)`` (no channel axis);
- coordinates and DDFs are ``(batch, *spatial_out, ndim)`` in voxel units of the image being sampled, in
  ij(k) order: channel ``c`` is the position along spatial axis ``c``.

Boundary rules, per spatial axis of size ``d``:

- ``"zero"``: a sample whose coordinate lies outside ``[0, d - 1]`` on any axis is 0. Inside that range
  the value is the exact interpolation, including at the coordinate 0 itself. (DeepReg also returned 0
  for a coordinate of exactly 0; tfreg samples the image there. Every other value matches DeepReg.)
- ``"replicate"``: coordinates are clamped to ``[0, d - 1]``, so the edge values repeat outwards.

A NaN coordinate counts as outside: 0 with ``"zero"``, NaN with ``"replicate"``.

Cost: linear resampling packs the 2^n corners of every cell into one table row, so that a single gather
fetches them all (on CPU one gather of 8-value rows costs about what three or four gathers of single
values do); the table is a transient copy of the image 2^n times as large (8x in 3-D). The corners are
then combined by one linear interpolation per axis.
benchmarks/README.md (bench_core) has the time and memory beside SciPy's ``map_coordinates(order=1)``.
"""

import itertools

from keras import ops

from tfreg.checks import BOUNDARIES, check_choice
from tfreg.ops.dtypes import as_float

INTERPOLATIONS = ("linear", "nearest")


def _sizes(x, axes):
    """Sizes of ``x`` along ``axes``: Python ints where static, scalar tensors where only known at run time."""
    dynamic = None
    sizes = []
    for axis in axes:
        d = x.shape[axis]
        if d is None:
            if dynamic is None:
                dynamic = ops.shape(x)
            d = dynamic[axis]
        sizes.append(d)
    return sizes


def resample(image, coords, interpolation: str = "linear", boundary: str = "zero"):
    """Sample ``image`` at voxel coordinates.

    Args:
        image: ``(B, *S_in, C)`` or ``(B, *S_in)``, intensities in any unit. Integer images are sampled as
            float32. ``S_in`` may differ from ``S_out``.
        coords: ``(B, *S_out, ndim)`` or ``(*S_out, ndim)`` (the same coordinates for every batch item),
            voxel coordinates into ``image`` in ij(k) order; ``ndim = coords.shape[-1]`` (2 or 3).
            A batch of 1 (in either argument) broadcasts against the other's batch.
        interpolation: ``"linear"`` ((bi/tri)linear) or ``"nearest"`` (round half to even).
        boundary: ``"zero"`` (0 outside ``[0, d - 1]`` on any axis) or ``"replicate"`` (coordinates clamped
            to ``[0, d - 1]``). See the module docstring.

    Returns:
        ``(B, *S_out, C)`` when ``image`` has a channel axis (rank ``ndim + 2``), ``(B, *S_out)`` when it has
        none (rank ``ndim + 1``); dtype of ``image`` (float32 for integer images). For ``"linear"``,
        gradients flow to both ``image`` and ``coords``.
    """
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_choice(boundary, "boundary", BOUNDARIES)
    image = as_float(image)
    coords = ops.convert_to_tensor(coords)
    ndim = coords.shape[-1]
    if ndim is None or len(coords.shape) < 2:
        raise ValueError(
            f"coords must be (batch, *spatial_out, ndim) or (*spatial_out, ndim) with a static ndim, "
            f"got shape {tuple(coords.shape)}"
        )
    if len(coords.shape) not in (ndim + 1, ndim + 2):
        raise ValueError(
            f"coords must have rank ndim + 1 or ndim + 2 = {ndim + 1} or {ndim + 2} for ndim = coords.shape[-1] "
            f"= {ndim}, got shape {tuple(coords.shape)}"
        )
    image, has_channels = _check_image(image, ndim)
    if len(coords.shape) == ndim + 1:
        coords = ops.expand_dims(coords, 0)
    _check_batches(image.shape[0], coords.shape[0], "coords")
    # Positions and weights stay in float32 even for float16 images: float16 cannot resolve a fraction
    # of a voxel at indices in the hundreds.
    coords = ops.cast(coords, "float32")
    xs = _components(coords, ndim)
    return _sample(image, xs, has_channels, interpolation, boundary)


def _components(field, ndim: int):
    """The ``ndim`` components of ``field`` ``(..., ndim)``, each ``(...)``.

    Moving the component axis first and unstacking there (contiguous blocks) costs one transpose; its
    gradient is a cheap stack and transpose, where ``field[..., a]`` would cost a full-size
    strided-slice gradient per component (about a quarter of a 3-D warp's forward+backward on CPU).
    """
    rank = len(field.shape)
    return ops.unstack(ops.transpose(field, (rank - 1,) + tuple(range(rank - 1))), num=ndim, axis=0)


def _check_image(image, ndim: int):
    """``(image with a channel axis, whether it had one)``; ValueError unless rank is ndim + 1 or ndim + 2."""
    rank = len(image.shape)
    if rank == ndim + 1:
        return ops.expand_dims(image, -1), False
    if rank == ndim + 2:
        return image, True
    raise ValueError(
        f"image must be (batch, *spatial, channels) or (batch, *spatial) with {ndim} spatial axes "
        f"(rank {ndim + 2} or {ndim + 1}), got shape {tuple(image.shape)}"
    )


def _check_batches(b_img, b_crd, what: str) -> None:
    if b_img is not None and b_crd is not None and b_img != b_crd and 1 not in (b_img, b_crd):
        raise ValueError(
            f"{what} batch size {b_crd} does not match image batch size {b_img} (expected equal, or 1 in one of them)"
        )


def _sample(image, xs, has_channels: bool, interpolation: str, boundary: str):
    """Core of :func:`resample`.

    Args:
        image: ``(B, *S_in, C)`` floating.
        xs: ``ndim`` float32 tensors, the coordinate along each spatial axis, all ``(B or 1, *S_out)``
            (or broadcastable to it).
        has_channels: whether to keep the channel axis in the result.
    """
    ndim = len(xs)
    dtype = image.dtype
    b_img = image.shape[0]

    sizes = _sizes(image, range(1, ndim + 1))
    channels = image.shape[-1] if image.shape[-1] is not None else ops.shape(image)[-1]

    if interpolation == "linear":
        table = _corner_table(image, ndim, channels)
    else:
        table = ops.reshape(image, (-1, channels))
    strides = [1] * ndim
    for a in range(ndim - 2, -1, -1):
        strides[a] = strides[a + 1] * sizes[a + 1]
    n_rows = strides[0] * sizes[0]

    inside = None
    base = None  # row of each sample in the table: its cell (linear) or its nearest voxel
    fractions = []  # per axis: position of the sample between its cell's lower and upper corner, [0, 1)
    for a in range(ndim):
        x = xs[a]
        d = sizes[a]
        top = float(d - 1) if isinstance(d, int) else ops.cast(d - 1, "float32")
        xc = ops.clip(x, 0.0, top)
        if boundary == "zero":
            # Clipping leaves exactly the in-range coordinates unchanged (NaN compares unequal: outside).
            ok = ops.equal(x, xc)
            inside = ok if inside is None else ops.logical_and(inside, ok)
        if interpolation == "nearest":
            index = ops.cast(ops.round(xc), "int32")
        else:
            lo = ops.stop_gradient(ops.floor(xc))
            fractions.append(xc - lo)
            index = ops.cast(lo, "int32")
        index = index * strides[a] if a < ndim - 1 else index
        base = index if base is None else base + index
    # Only a NaN coordinate can give an index outside [0, d - 1] (its integer cast is platform-defined),
    # and such a sample is 0 or NaN whatever it reads; one clip of the row keeps the gather in bounds.
    base = ops.clip(base, 0, n_rows - 1)
    if not (isinstance(b_img, int) and b_img == 1):
        batch = b_img if b_img is not None else ops.shape(image)[0]
        base = base + ops.reshape(ops.arange(batch, dtype="int32") * n_rows, (-1,) + (1,) * ndim)

    out = ops.take(table, base, axis=0)  # (B, *S_out, 2^n * C) linear, (B, *S_out, C) nearest
    if interpolation == "linear":
        # Corner-major, so that each corner is a contiguous (B, *S_out, C) block that unstacking need
        # not copy; then one linear interpolation per axis, from the last, halves the corners each time.
        lead = [d if d is not None else ops.shape(base)[i] for i, d in enumerate(base.shape)]
        out = ops.reshape(out, tuple(lead) + (2**ndim, channels))
        out = ops.transpose(out, (ndim + 1,) + tuple(range(ndim + 1)) + (ndim + 2,))  # (2^n, B, *S_out, C)
        values = ops.unstack(out, num=2**ndim, axis=0)
        for a in range(ndim - 1, -1, -1):
            f = ops.expand_dims(ops.cast(fractions[a], dtype), -1)
            values = [v0 + f * (v1 - v0) for v0, v1 in zip(values[0::2], values[1::2])]
        out = values[0]
    if inside is not None:
        # Outside samples are exactly 0, whatever their (clipped) cell holds; their gradient is 0.
        out = ops.where(ops.expand_dims(inside, -1), out, ops.zeros((), dtype))
    if not has_channels:
        out = ops.squeeze(out, -1)
    return out


def _corner_table(image, ndim: int, channels):
    """``(B * prod(S), 2^n * C)``: row ``r`` holds the 2^n corners of the cell whose lower corner is voxel ``r``.

    Corner order: the first spatial axis' offset is the most significant bit. Padding by one voxel at the far
    end of every axis (symmetric: the last plane repeated) gives the cells of the last plane a second corner,
    so a coordinate of exactly ``d - 1`` has fraction 0 and returns that voxel exactly.
    """
    padded = ops.pad(image, [[0, 0]] + [[0, 1]] * ndim + [[0, 0]], mode="symmetric")
    corners = []
    for bits in itertools.product((0, 1), repeat=ndim):
        index = (slice(None),) + tuple(slice(1, None) if b else slice(0, -1) for b in bits)
        corners.append(padded[index])
    # Stacking on a new leading axis and transposing is ~3x faster in TensorFlow than stacking on an
    # inner axis directly.
    stacked = ops.stack(corners, axis=0)  # (2^n, B, *S, C)
    stacked = ops.transpose(stacked, tuple(range(1, ndim + 2)) + (0, ndim + 2))  # (B, *S, 2^n, C)
    return ops.reshape(stacked, (-1, (2**ndim) * channels))


def warp(image, ddf, interpolation: str = "linear", boundary: str = "zero"):
    """Warp ``image`` by a dense displacement field: ``resample(image, reference_grid + ddf)``.

    Args:
        image: moving image ``(B, *S_in, C)`` or ``(B, *S_in)``. It is not resized: ``S_in`` may differ
            from the DDF's spatial shape.
        ddf: ``(B, *S_out, ndim)``, displacement in voxels of the moving image, ij(k) order; output voxel
            ``p`` samples the moving image at ``p + ddf[p]``. A batch of 1 broadcasts against the image's.
        interpolation: ``"linear"`` or ``"nearest"``, see :func:`resample`.
        boundary: ``"zero"`` or ``"replicate"``, see :func:`resample`.

    Returns:
        ``(B, *S_out, C)`` or ``(B, *S_out)`` (following ``image``), the warped image.
    """
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_choice(boundary, "boundary", BOUNDARIES)
    ddf = ops.convert_to_tensor(ddf)
    ndim = ddf.shape[-1]
    if ndim is None or len(ddf.shape) != ndim + 2:
        raise ValueError(
            f"ddf must be (batch, *spatial, ndim) with ndim = ddf.shape[-1] spatial axes, got shape {tuple(ddf.shape)}"
        )
    image, has_channels = _check_image(as_float(image), ndim)
    _check_batches(image.shape[0], ddf.shape[0], "ddf")
    ddf = ops.cast(ddf, "float32")
    # Adding each axis' index as a broadcast 1-D ramp avoids materialising the (*S_out, ndim) grid.
    xs = []
    for a, (d, u) in enumerate(zip(_sizes(ddf, range(1, ndim + 1)), _components(ddf, ndim))):
        ramp = ops.reshape(ops.arange(d, dtype="float32"), (-1,) + (1,) * (ndim - 1 - a))
        xs.append(u + ramp)
    return _sample(image, xs, has_channels, interpolation, boundary)


__all__ = ["resample", "warp", "INTERPOLATIONS", "BOUNDARIES"]
