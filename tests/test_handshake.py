"""Handshake geometry and blending weights (issue 5): ramps, regions, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest

from coupling.errors import CouplingInputError
from coupling.handshake import Handshake, fill_region, ramp


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
    with pytest.raises(CouplingInputError, match="pad_A = 3.0 Å is thinner than the model's cutoff 5.0"):
        hs.check(X, cutoff_A=5.0)
    far = Handshake((100, 100, 100), (120, 120, 120), width_A=5.0, pad_A=6.0)
    with pytest.raises(CouplingInputError, match="do not overlap"):
        far.check(X, cutoff_A=5.0)
    narrow = Handshake((0, 0, 0), (20, 20, 20), width_A=4.0, pad_A=6.0, coupled_faces=("xmin", "xmax"))
    with pytest.raises(CouplingInputError, match=r"width_A = 4.0 Å is narrower than the model's cutoff 5.0 Å on the "
                                                 r"coupled faces \['xmin', 'xmax'\]"):
        narrow.check(X, cutoff_A=5.0)
    with pytest.raises(CouplingInputError, match="no free core"):
        Handshake((0, 0, 0), (7, 20, 20), width_A=4.0, pad_A=6.0)
    with pytest.raises(CouplingInputError, match="ramp"):
        Handshake((0, 0, 0), (20, 20, 20), width_A=4.0, pad_A=6.0, ramp="cubic")
    sets = Handshake((0, 0, 0), (20, 20, 20), width_A=5.0, pad_A=6.0).check(X, cutoff_A=5.0)
    assert sets["free"].sum() + sets["handshake"].sum() == len(X)


CU_A0 = 3.6  # Å


def _lattice_indices(atoms, site, orientation, a0):
    """Positions relative to ``site`` in the crystal's frame, in half cells (integers on the lattice)."""
    from continuum.materials import orientation_matrix

    return (atoms.positions - np.asarray(site)) @ orientation_matrix(*orientation) / (a0 / 2)


def test_fill_region_puts_the_lattice_a_quarter_cell_off_the_middle_and_labels_the_bodies():
    lengths = (16 * CU_A0, 5 * CU_A0, 5 * CU_A0)
    hs = Handshake((5 * CU_A0, -1.0, -1.0), (11 * CU_A0, lengths[1] + 1, lengths[2] + 1), width_A=5.0, pad_A=5.2,
                   coupled_faces=("xmin", "xmax"))
    orientation = ((1, 0, 0), (0, 1, 0))
    atoms = fill_region("Cu", "fcc", CU_A0, orientation, hs, lengths, split_x_A=8 * CU_A0)
    X = atoms.positions
    assert not atoms.pbc.any() and len(atoms) > 0 and set(atoms.get_chemical_symbols()) == {"Cu"}
    assert not hs.classify(X)["outside"].any() and np.all((X > 0) & (X < np.asarray(lengths)))
    # the middle of the padded box (clipped to the body) is 8 x 2.5 x 2.5 cells: planes a quarter cell off it
    quarter = (X / CU_A0 - 0.25) / 0.5
    assert np.allclose(quarter, np.round(quarter), atol=1e-9)
    assert X[:, 1].min() == pytest.approx(CU_A0 / 4) and X[:, 1].max() == pytest.approx(lengths[1] - CU_A0 / 4)
    # free y and z faces: atoms run to the body's surface; coupled x faces: up to the pad
    assert X[:, 0].min() > 5 * CU_A0 - 5.2 and X[:, 0].max() < 11 * CU_A0 + 5.2
    below = X[:, 0] < 8 * CU_A0
    assert np.array_equal(atoms.arrays["body"], np.where(below, 1, 2)) and below.any() and (~below).any()
    tagged = fill_region("Cu", "fcc", CU_A0, orientation, hs, lengths, split_x_A=8 * CU_A0,
                         body_tags={"body1": 7, "body2": 9})
    assert set(np.unique(tagged.arrays["body"])) == {7, 9}
    assert "body" not in fill_region("Cu", "fcc", CU_A0, orientation, hs, lengths).arrays


@pytest.mark.parametrize("orientation", [((1, 0, 0), (0, 1, 0)), ((1, 1, 0), (-1, 1, 0)), ((1, 1, 1), (-1, 1, 0))])
def test_fill_region_with_a_given_site_fills_the_box_with_that_lattice(orientation):
    lengths = (40.0, 30.0, 30.0)
    hs = Handshake((10.0, 8.0, 8.0), (30.0, 22.0, 22.0), width_A=4.0, pad_A=5.0)
    site = (1.0, 2.0, 3.0)
    atoms = fill_region("Cu", "fcc", CU_A0, orientation, hs, lengths, site_A=site)
    h = _lattice_indices(atoms, site, orientation, CU_A0)
    assert np.allclose(h, np.round(h), atol=1e-9) and np.all(np.round(h).sum(axis=1) % 2 == 0)  # fcc sites
    assert not hs.classify(atoms.positions)["outside"].any()
    # filled: about the fcc density over the padded box
    volume = np.prod(np.asarray(hs.upper_A) - hs.lower_A + 2 * hs.pad_A)
    assert len(atoms) == pytest.approx(4 * volume / CU_A0**3, rel=0.1)


def test_fill_region_refuses_bad_input():
    hs = Handshake((10.0, 8.0, 8.0), (30.0, 22.0, 22.0), width_A=4.0, pad_A=5.0)
    with pytest.raises(CouplingInputError, match="a0_A"):
        fill_region("Cu", "fcc", -1.0, ((1, 0, 0), (0, 1, 0)), hs, (40.0, 30.0, 30.0))
    with pytest.raises(CouplingInputError, match="body_lengths_A"):
        fill_region("Cu", "fcc", CU_A0, ((1, 0, 0), (0, 1, 0)), hs, (40.0, 30.0))
    with pytest.raises(CouplingInputError, match="body2"):
        fill_region("Cu", "fcc", CU_A0, ((1, 0, 0), (0, 1, 0)), hs, (40.0, 30.0, 30.0), split_x_A=20.0,
                    body_tags={"body1": 1})


def test_lattice_periods_and_a_body_of_partial_cells_is_reported(caplog):
    from coupling.handshake import lattice_period_A

    assert lattice_period_A("fcc", 4.0, (1, 0, 0)) == pytest.approx(4.0)
    assert lattice_period_A("fcc", 4.0, (1, 1, 0)) == pytest.approx(4.0 / np.sqrt(2))
    assert lattice_period_A("fcc", 4.0, (-2, 2, 0)) == pytest.approx(4.0 / np.sqrt(2))
    assert lattice_period_A("fcc", 4.0, (1, 1, 1)) == pytest.approx(4.0 * np.sqrt(3))
    assert lattice_period_A("bcc", 4.0, (1, 1, 1)) == pytest.approx(2.0 * np.sqrt(3))
    assert lattice_period_A("hcp", 4.0, (1, 0, 0)) is None
    hs = Handshake((5 * CU_A0, -1.0, -1.0), (11 * CU_A0, 5 * CU_A0 + 1, 5 * CU_A0 + 1), width_A=5.0, pad_A=5.2,
                   coupled_faces=("xmin", "xmax"))
    with caplog.at_level("WARNING", logger="coupling.handshake"):
        fill_region("Cu", "fcc", CU_A0, ((1, 0, 0), (0, 1, 0)), hs, (16 * CU_A0, 5 * CU_A0, 5 * CU_A0))
    assert "lattice periods" not in caplog.text
    with caplog.at_level("WARNING", logger="coupling.handshake"):
        fill_region("Cu", "fcc", CU_A0, ((1, 0, 0), (0, 1, 0)), hs, (16 * CU_A0, 5.5 * CU_A0, 5 * CU_A0))
    assert "along y, 5.500 lattice periods" in caplog.text
