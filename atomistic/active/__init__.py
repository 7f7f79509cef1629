"""On-the-fly active learning (DESIGN §3): committee MD, an oracle for the configurations the
committee disagrees on, an append-only labelled dataset, and warm-started retraining.

    oracle      any ASE calculator behind one interface, with failures and time-outs caught
    store       the append-only, fsynced dataset and the record of failed labels
    loop        the loop itself, resumable after a kill at any moment
    calibration committee disagreement vs true error on held-out data
    assessment  oracle MD reference frames, and every generation's errors and calibration on them
"""

from atomistic.active.assessment import assess, reference_frames
from atomistic.active.calibration import CommitteeErrors, committee_errors, spearman
from atomistic.active.loop import ActiveLearning, ActiveLearningError, ActiveSettings, Stage
from atomistic.active.oracle import NAMED_ORACLES, Oracle, OracleFailure, OracleSpec
from atomistic.active.store import LabelledStore

__all__ = ["ActiveLearning", "ActiveLearningError", "ActiveSettings", "CommitteeErrors", "LabelledStore",
           "NAMED_ORACLES", "Oracle", "OracleFailure", "OracleSpec", "Stage", "assess", "committee_errors",
           "reference_frames", "spearman"]
