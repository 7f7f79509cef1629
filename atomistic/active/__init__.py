"""On-the-fly active learning (DESIGN §3): committee MD, an oracle for the configurations the
committee disagrees on, an append-only labelled dataset, and warm-started retraining.

    oracle      any ASE calculator behind one interface, with failures and time-outs caught
    store       the append-only, fsynced dataset and the record of failed labels
    loop        the loop itself, resumable after a kill at any moment
    calibration committee disagreement vs true error on held-out data
"""

from .calibration import CommitteeErrors, committee_errors, spearman
from .loop import ActiveLearning, ActiveLearningError, ActiveSettings, Stage
from .oracle import NAMED_ORACLES, Oracle, OracleFailure, OracleSpec
from .store import LabelledStore

__all__ = ["ActiveLearning", "ActiveLearningError", "ActiveSettings", "CommitteeErrors", "LabelledStore",
           "NAMED_ORACLES", "Oracle", "OracleFailure", "OracleSpec", "Stage", "committee_errors", "spearman"]
