"""Argument checks and shared name constants, in one place (pure Python and NumPy: no Keras, no TensorFlow).

Every constructor and function of tfreg that validates an argument uses these helpers, so that bad input
always fails the same way: a ``ValueError`` naming the argument, the value received and what was expected
(for names, the allowed values and the closest match). The constants are the name lists that several
packages share (boundaries of ``tfreg.ops``, the loss categories and dataset splits of the config).
"""

from __future__ import annotations

import difflib
from numbers import Integral, Real
from typing import Any, Optional, Sequence

import numpy as np

#: How the resampling and filtering ops of ``tfreg.ops`` treat the outside of the grid: ``"zero"`` (0
#: outside; DeepReg's SAME convolutions and its resampler) or ``"replicate"`` (the nearest edge voxel).
BOUNDARIES: tuple = ("zero", "replicate")
#: DeepReg's loss categories under ``train.loss``, in the order their terms are summed and logged.
LOSS_CATEGORIES: tuple = ("image", "label", "regularization")
#: The dataset splits, in the order loaders are built.
DATASET_SPLITS: tuple = ("train", "valid", "test")
#: Units of the points in a landmark file (``dataset.landmark_units``, :mod:`tfreg.data.landmarks`): mm in
#: the image's LPS physical frame, or 0-based continuous voxel indices of the image array's axes.
LANDMARK_UNITS: tuple = ("physical", "voxel")
#: The batch reductions of Keras losses, plus None / ``"none"`` for the per-sample vector.
REDUCTIONS: tuple = (None, "none", "sum_over_batch_size", "mean", "sum")


def closest_match(value: Any, allowed: Sequence[Any]) -> str:
    """The allowed name closest to ``value`` (typos, wrong case), or ``""`` when none is close."""
    if not isinstance(value, str) or not allowed:
        return ""
    allowed = [str(a) for a in allowed]
    # A difference of case only (``adam`` for ``Adam``) is the likeliest mistake, but difflib would
    # rank ``Nadam`` above ``Adam``: check it first.
    by_lower = {a.lower(): a for a in allowed}
    if value.lower() in by_lower:
        return by_lower[value.lower()]
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
    if close:
        return close[0]
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else ""


def suggestion(value: Any, allowed: Sequence[Any]) -> str:
    """``" Did you mean 'x'?"`` for the closest allowed name, or ``""``."""
    match = closest_match(value, allowed)
    return f" Did you mean {match!r}?" if match else ""


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else ValueError naming ``name``, the value and the choices.

    ``True`` never matches ``1`` (nor ``False`` ``0``): a bool is only accepted where a bool is listed.
    """
    ok = any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices)
    if not ok:
        shown = ", ".join(repr(c) for c in choices)
        # The value first, then the allowed ones: "kernel='box' is not supported: kernel must be one of [...]".
        raise ValueError(
            f"{name}={value!r} is not supported: {name} must be one of [{shown}]." + suggestion(value, choices)
        )
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1 nor a string), else ValueError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_int(value: Any, name: str, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """``value`` as a Python int in ``[minimum, maximum]`` (a bound of None is open), or ValueError.

    Bools are refused (``True`` is an ``int`` to Python, never a size to tfreg); NumPy integers are accepted.
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, Integral)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        raise ValueError(f"{name} must be an integer{_bounds(minimum, maximum)}, got {value!r}")
    return int(value)


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as a Python int >= 1, or ValueError naming ``name``."""
    return check_int(value, name, minimum=1)


def check_number(
    value: Any,
    name: str,
    minimum: Optional[float] = 0.0,
    maximum: Optional[float] = None,
    exclusive_minimum: bool = False,
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]``, or ValueError naming ``name``.

    ``minimum`` defaults to 0 (most numeric arguments of tfreg are weights, widths or constants >= 0);
    None leaves that side open. ``exclusive_minimum=True`` requires ``value > minimum``.
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, Real) and bool(np.isfinite(value))
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        raise ValueError(f"{name} must be a number{_bounds(minimum, maximum, exclusive_minimum)}, got {value!r}")
    return float(value)


def _bounds(minimum, maximum, exclusive_minimum: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f" in {'(' if exclusive_minimum else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f" {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


__all__ = [
    "BOUNDARIES",
    "LOSS_CATEGORIES",
    "DATASET_SPLITS",
    "REDUCTIONS",
    "closest_match",
    "suggestion",
    "check_choice",
    "check_bool",
    "check_int",
    "check_positive_int",
    "check_number",
]
