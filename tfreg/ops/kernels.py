"""1-D filter kernels for separable filtering (DeepReg's LNCC windows and multi-scale smoothing kernels).

Two families, both returning float32 NumPy arrays of shape ``(size,)``:

- size-parameterised windows used by LNCC (``kernel_size`` in voxels), **unnormalised** as in DeepReg:
  :func:`rectangular_kernel`, :func:`triangular_kernel`, :func:`gaussian_kernel`;
- sigma-parameterised smoothing kernels used by the multi-scale label losses (``sigma`` in voxels),
  **normalised to sum 1**: :func:`gaussian_kernel_sigma`, :func:`cauchy_kernel`, and
  :func:`gaussian_kernel_antialias` (DeepReg's anti-aliasing filter before its control-point grid).

Configs name kernels by string; :data:`SIZE_KERNELS` and :data:`SIGMA_KERNELS` map a name to its function.

NumPy is used here (not ``keras.ops``) because kernels depend only on Python numbers: they are built
once on the host and become constants of the filter ops.
"""

from typing import Callable, Dict

import numpy as np

from tfreg.checks import check_int, check_number


def _check_size(size, name: str = "size", minimum: int = 1) -> int:
    """``size`` as a Python int, or ValueError naming the argument."""
    return check_int(size, name, minimum)


def _check_sigma(sigma, name: str = "sigma") -> float:
    """``sigma`` as a positive finite float, or ValueError naming the argument."""
    return check_number(sigma, f"{name} (voxels)", exclusive_minimum=True)


def rectangular_kernel(size: int) -> np.ndarray:
    """Box window of ones, DeepReg's LNCC ``rectangular`` kernel.

    Args:
        size: number of taps, an integer >= 1 (voxels).

    Returns:
        float32 ``(size,)``, ``k[i] = 1``; unnormalised (sum = ``size``).
    """
    size = _check_size(size)
    return np.ones((size,), dtype=np.float32)


def triangular_kernel(size: int) -> np.ndarray:
    """Triangular window, DeepReg's LNCC ``triangular`` kernel.

    ``k[i] = m - |i - (size - 1) / 2|`` with ``m = (size + 1) // 2``, for ``i = 0 .. size-1``: ``[1, 2, 1]``
    for size 3, ``[1, 2, 3, 2, 1]`` for size 5 (the self-convolution of a box of length ``m``).

    Args:
        size: odd integer >= 3 (voxels).

    Returns:
        float32 ``(size,)``, unnormalised (sum = ``m**2``).
    """
    size = _check_size(size, minimum=3)
    if size % 2 == 0:
        raise ValueError(f"size of a triangular kernel must be odd and >= 3, got {size}")
    m = (size + 1) // 2
    i = np.arange(size, dtype=np.float64)
    return (m - np.abs(i - (size - 1) / 2.0)).astype(np.float32)


def gaussian_kernel(size: int) -> np.ndarray:
    """Gaussian window of a given length, DeepReg's LNCC ``gaussian`` kernel.

    ``k[x] = exp(-(x - (size - 1) / 2)**2 / (2 * (size / 3)**2))`` for ``x = 0 .. size-1``: the window spans
    about +-1.5 standard deviations. Unnormalised (peak 1 for odd sizes).

    Args:
        size: number of taps, an integer >= 1 (voxels).

    Returns:
        float32 ``(size,)``.
    """
    size = _check_size(size)
    x = np.arange(size, dtype=np.float64)
    sigma = size / 3.0
    return np.exp(-((x - (size - 1) / 2.0) ** 2) / (2.0 * sigma**2)).astype(np.float32)


def gaussian_kernel_sigma(sigma: float) -> np.ndarray:
    """Normalised Gaussian of standard deviation ``sigma``, truncated at ``int(3 sigma)`` voxels.

    ``k[x] = exp(-x**2 / (2 sigma**2)) / sum``, for ``x = -int(3 sigma) .. int(3 sigma)``; DeepReg's
    multi-scale ``gaussian`` kernel. For ``sigma < 1/3`` this is the identity ``[1]``.

    Args:
        sigma: standard deviation in voxels, > 0.

    Returns:
        float32 ``(2 * int(3 sigma) + 1,)``, summing to 1.
    """
    sigma = _check_sigma(sigma)
    tail = int(3.0 * sigma)
    x = np.arange(-tail, tail + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def gaussian_kernel_antialias(sigma: float) -> np.ndarray:
    """Normalised Gaussian of standard deviation ``sigma`` on ``ceil(3 sigma)`` taps, rounded up to odd.

    DeepReg's anti-aliasing filter of the ``control_points`` head (sigma ``0.44 * spacing``, about
    ``ln(4) / pi`` control-point spacings): ``size = ceil(3 sigma)``, plus one when that is even, so the
    kernel is centred, and ``k[x] = exp(-x**2 / (2 sigma**2)) / sum`` for ``x = -(size - 1) / 2 .. (size - 1)
    / 2``. It reaches about 1.5 sigma each side, half the reach of :func:`gaussian_kernel_sigma`.

    Args:
        sigma: standard deviation in voxels, > 0.

    Returns:
        float32 ``(size,)``, summing to 1.
    """
    sigma = _check_sigma(sigma)
    size = int(np.ceil(3.0 * sigma))
    size += (size + 1) % 2
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def cauchy_kernel(sigma: float) -> np.ndarray:
    """Normalised Cauchy (Lorentzian) kernel of scale ``sigma``, truncated at ``int(5 sigma)`` voxels.

    ``k[x] = 1 / (1 + (x / sigma)**2) / sum``, for ``x = -int(5 sigma) .. int(5 sigma)``; DeepReg's
    multi-scale ``cauchy`` kernel (heavier tails than the Gaussian, hence the wider support).

    Args:
        sigma: half width at half maximum in voxels, > 0.

    Returns:
        float32 ``(2 * int(5 sigma) + 1,)``, summing to 1.
    """
    sigma = _check_sigma(sigma)
    tail = int(5.0 * sigma)
    x = np.arange(-tail, tail + 1, dtype=np.float64)
    k = 1.0 / (1.0 + (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


#: LNCC windows, parameterised by their length in voxels (``kernel_type`` of ``lncc``).
SIZE_KERNELS: Dict[str, Callable[[int], np.ndarray]] = {
    "rectangular": rectangular_kernel,
    "triangular": triangular_kernel,
    "gaussian": gaussian_kernel,
}

#: Normalised smoothing kernels, parameterised by a scale in voxels (``kernel`` of multi-scale losses).
SIGMA_KERNELS: Dict[str, Callable[[float], np.ndarray]] = {
    "gaussian": gaussian_kernel_sigma,
    "cauchy": cauchy_kernel,
}

_FAMILIES = {"size": SIZE_KERNELS, "sigma": SIGMA_KERNELS}


__all__ = [
    "rectangular_kernel",
    "triangular_kernel",
    "gaussian_kernel",
    "gaussian_kernel_sigma",
    "gaussian_kernel_antialias",
    "cauchy_kernel",
    "SIZE_KERNELS",
    "SIGMA_KERNELS",
]
