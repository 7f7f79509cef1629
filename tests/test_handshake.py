"""Handshake geometry and blending weights (issue 5): ramps, regions, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest

from continuum.errors import ContinuumInputError
from coupling.handshake import Handshake, ramp


def test_ramps_are_monotone_and_the_c1_ramp_has_zero_slope_at_both_ends():
    t = np.linspace(-0.5, 1.5, 2001)
    for kind in ("linear", "c1"):
        r = ramp(t, kind)
        assert r[0] == 0.0 and r[-1] == 1.0 and np.all(np.diff(r) >= 0)
    h = 1e-6
    for end in (0.0, 1.0):
        slope = (ramp(end + h, "c1") - ramp(end - h, "c1")) / (2 * h)
        assert abs(slope) < 1e-5
        assert abs((ramp(end + h, "linear") - ramp(end - h, "linear")) / (2 * h) - 0.5) < 1e-6  # a kink


def test_regions_and_weights_of_a_box_with_one_free_surface():
    hs = Handshake((0, 0, 0), (20, 20, 20), width_A=4.0, pad_A=5.0,
                   coupled_faces=("xmin", "xmax", "ymin", "ymax", "zmin"), ramp="linear")  # zmax: free surface
    X = np.array([[10, 10, 10],   # core
                  [10, 10, 19.9],  # near the free surface: still core
                  [2, 10, 10],     # handshake, half way
                  [10, 10, 1.0],   # handshake at a quarter
                  [-3, 10, 10],    # pad
                  [-6, 10, 10],    # beyond the pad
                  [10, 10, 21]])   # beyond the free surface: not in the body
    d = hs.depth(X)
    assert np.allclose(d[:5], [10, 10, 2, 1, -3])
    assert np.allclose(hs.beta(X), [1, 1, 0.5, 0.25, 0, 0, 0])
    sets = hs.classify(X)
    assert sets["free"].tolist() == [True, True, False, False, False, False, False]
    assert sets["handshake"].tolist() == [False, False, True, True, False, False, False]
    assert sets["pad"].tolist() == [False, False, False, False, True, False, False]


def test_bad_handshakes_are_refused_before_any_solve():
    X = np.random.default_rng(0).uniform(0, 20, size=(500, 3))
    hs = Handshake((0, 0, 0), (20, 20, 20), width_A=4.0, pad_A=3.0)
    with pytest.raises(ContinuumInputError, match="pad_A = 3.0 Å is thinner than the model's cutoff 5.0"):
        hs.check(X, cutoff_A=5.0)
    far = Handshake((100, 100, 100), (120, 120, 120), width_A=4.0, pad_A=6.0)
    with pytest.raises(ContinuumInputError, match="do not overlap"):
        far.check(X, cutoff_A=5.0)
    with pytest.raises(ContinuumInputError, match="no free core"):
        Handshake((0, 0, 0), (7, 20, 20), width_A=4.0, pad_A=6.0)
    with pytest.raises(ContinuumInputError, match="ramp"):
        Handshake((0, 0, 0), (20, 20, 20), width_A=4.0, pad_A=6.0, ramp="cubic")
    sets = Handshake((0, 0, 0), (20, 20, 20), width_A=4.0, pad_A=6.0).check(X, cutoff_A=5.0)
    assert sets["free"].sum() + sets["handshake"].sum() == len(X)
