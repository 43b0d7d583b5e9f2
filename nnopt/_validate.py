"""Argument checks shared by the reference functions.

Every check raises ``ValueError`` naming the argument and what was expected, so
that a student who calls a reference function wrongly learns what to fix.
"""

import math
from numbers import Real

import numpy as np


def array(name, value):
    """Return ``value`` as a new float64 array, or raise if it is not numeric."""
    try:
        result = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    return result


def same_shape(name, value, like_name, like):
    """Return ``value`` as a float64 array with exactly the shape of ``like``."""
    result = array(name, value)
    if result.shape != like.shape:
        raise ValueError(
            f"{name} must have the same shape as {like_name} {like.shape}, got {result.shape}"
        )
    return result


def number(name, value, *, low=0.0, high=math.inf, include_high=True):
    """Return ``value`` as a float in ``[low, high]`` (or ``[low, high)``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    upper_ok = value <= high if include_high else value < high
    if value < low or not upper_ok:
        bracket = "]" if include_high else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value}")
    return value


def integer(name, value, *, low=0):
    """Return ``value`` as an int that is at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)
