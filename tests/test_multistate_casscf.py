"""Multi-state reference data from SA-CASSCF (PySCF) on LiF, through the oracle interface: the
analytic state gradients match finite differences, labels do not depend on the molecule's
orientation, survive extxyz, and the shipped dataset is what the oracle gives today (issue 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from .conftest import ROOT

pytest.importorskip("pyscf")

DATASET = ROOT / "cases" / "multistate" / "lif_sa_casscf.extxyz"


def lif(r, axis=(0.0, 0.0, 1.0), origin=(0.0, 0.0, 0.0)):
    origin = np.asarray(origin)
    return Atoms("LiF", positions=[origin, origin + r * np.asarray(axis)])


def test_sa_casscf_lif_labels_are_consistent_and_reproducible(tmp_path):
    from ase.io import read, write

    from atomistic.active import Oracle
    from atomistic.multistate import MultiStateData
    from atomistic.multistate.casscf import CASSCFSpec, label_states

    oracle = Oracle(factory=CASSCFSpec(), labeller=label_states)
    for r in (2.0, 3.4):  # analytic SA-CASSCF gradients of both states against central differences
        at, plus, minus = (oracle(lif(x)) for x in (r, r + 1e-3, r - 1e-3))
        fd = -(plus.info["state_energies"] - minus.info["state_energies"]) / 2e-3
        analytic = at.arrays["state_forces"][1, 2::3]  # F atom, z, both states
        assert np.allclose(analytic, fd, atol=5e-3), (r, analytic, fd)
        assert np.allclose(at.arrays["state_forces"].sum(0), 0.0, atol=1e-6)  # translation invariance
        assert np.allclose(at.arrays["coupling_numerators"].sum(0), 0.0, atol=1e-6)  # with ETFs
        assert at.get_potential_energy() == pytest.approx(at.info["state_energies"][0])
    # the same labels, rotated, whatever the molecule's orientation
    axis = np.array([0.48, -0.6, 0.64])
    turned = oracle(lif(3.4, axis, (0.2, 0.1, 0.0)))
    assert np.allclose(turned.info["state_energies"], at.info["state_energies"], atol=1e-6)
    assert np.allclose(turned.arrays["state_forces"][1].reshape(2, 3) @ axis, analytic, atol=1e-5)
    g, g_turned = at.arrays["coupling_numerators"][1, 2], turned.arrays["coupling_numerators"][1] @ axis
    assert abs(g_turned) == pytest.approx(abs(g), abs=1e-5)

    shipped = read(DATASET, ":")
    assert len(shipped) == 57 and {f.info["split"] for f in shipped} == {"train", "test"}
    for frame in (shipped[5], shipped[30]):  # the file is what the oracle gives
        live = oracle(frame)
        assert np.allclose(live.info["state_energies"], frame.info["state_energies"], atol=1e-6)
        assert np.allclose(live.arrays["state_forces"], frame.arrays["state_forces"], atol=1e-5)
        assert np.allclose(np.abs(live.arrays["coupling_numerators"]), np.abs(frame.arrays["coupling_numerators"]),
                           atol=1e-5)
    gaps = np.array([f.info["state_energies"][1] - f.info["state_energies"][0] for f in shipped])
    bonds = np.array([f.get_distance(0, 1) for f in shipped])
    assert gaps[bonds.argmin()] > 4.0 and 3.0 < bonds[gaps.argmin()] < 3.8 and gaps.min() < 1.6  # the avoided crossing

    write(tmp_path / "lif.extxyz", [at, turned])
    back = MultiStateData.from_frames(read(tmp_path / "lif.extxyz", ":"))
    assert torch.allclose(back.energies, MultiStateData.from_frames([at, turned]).energies)
    assert back.couplings.shape == (2, 2, 2, 2, 3) and torch.equal(back.couplings[:, 1, 0], -back.couplings[:, 0, 1])
    assert oracle.failures == 0
