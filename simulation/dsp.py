"""Small signal helpers shared by the stages and the training data path."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def resample(x: np.ndarray, rate: int, target: int, axis: int = -1) -> np.ndarray:
    """Polyphase resampling by the ratio target/rate, approximated by a fraction of small terms."""
    from scipy.signal import resample_poly

    if rate == target:
        return x
    ratio = Fraction(target, rate).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=axis)
