"""Regenerate ``lif_sa_casscf.extxyz``: LiF labelled by SA-CASSCF (PySCF, 6-31G, active Li 2s and
F 2p_z, two Σ+ states) through the oracle interface, at 48 bond lengths from 1.6 to 6.0 Å
(``info["split"] = "train"``) and 9 between them (``"test"``). About a minute on one core.

    python cases/multistate/make_lif_data.py [output.extxyz]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from atomistic.active import Oracle
from atomistic.multistate.casscf import CASSCFSpec, label_states

DEFAULT_PATH = Path(__file__).with_name("lif_sa_casscf.extxyz")


def main(path: str | Path = DEFAULT_PATH) -> None:
    oracle = Oracle(factory=CASSCFSpec(), labeller=label_states, name="sa-casscf")
    frames = []
    for split, bonds in (("train", np.linspace(1.6, 6.0, 48)), ("test", np.linspace(1.75, 5.85, 9))):
        for r in bonds:
            f = oracle(Atoms("LiF", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, r]]))
            f.info["split"] = split
            frames.append(f)
    write(str(path), frames, format="extxyz")
    print(f"{path}: {len(frames)} frames, {oracle.seconds:.0f} s of SA-CASSCF")


if __name__ == "__main__":
    main(*sys.argv[1:])
