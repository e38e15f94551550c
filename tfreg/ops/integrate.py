"""Integration of a stationary velocity field by scaling and squaring (``keras.ops`` only)."""

from keras import ops

from tfreg.checks import BOUNDARIES, check_choice, check_int
from tfreg.ops.warp import warp


def integrate_dvf(dvf, num_steps: int = 7, boundary: str = "zero"):
    """Displacement after unit time of a stationary velocity field (DeepReg's ``IntDVF``).

    Scaling and squaring: ``ddf = dvf / 2**num_steps``, then ``num_steps`` times
    ``ddf = ddf + warp(ddf, ddf)`` (linear interpolation), i.e. the displacement is composed with itself.

    Args:
        dvf: ``(B, *S, ndim)`` velocity, voxels per unit time, ij(k) order (2-D or 3-D).
        num_steps: number of squarings (int >= 0); DeepReg uses 7.
        boundary: ``"zero"`` (DeepReg: the displacement is taken as 0 where a sample leaves the volume) or
            ``"replicate"``, see :func:`tfreg.ops.warp.resample`.

    Returns:
        ``(B, *S, ndim)`` displacement field, voxels, same dtype as ``dvf`` (float32 for integer input).
    """
    num_steps = check_int(num_steps, "num_steps", minimum=0)
    check_choice(boundary, "boundary", BOUNDARIES)
    dvf = ops.convert_to_tensor(dvf)
    ndim = dvf.shape[-1]
    if ndim is None or len(dvf.shape) != ndim + 2:
        raise ValueError(
            f"dvf must be (batch, *spatial, ndim) with ndim = dvf.shape[-1] spatial axes, got shape {tuple(dvf.shape)}"
        )
    if "float" not in str(dvf.dtype):
        dvf = ops.cast(dvf, "float32")
    ddf = dvf / float(2**num_steps)
    for _ in range(num_steps):
        ddf = ddf + warp(ddf, ddf, interpolation="linear", boundary=boundary)
    return ddf


__all__ = ["integrate_dvf"]
