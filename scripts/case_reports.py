"""Run every shipped case in its CI-sized variant and record the numbers of its report.

    python scripts/case_reports.py record tests/data/case_reports.json   # after a deliberate change
    python scripts/case_reports.py compare tests/data/case_reports.json  # same numbers as recorded?

Numbers are compared to 1e-10 relative, a component of a vector (keys that differ only in an
``_x`` / ``_y`` / ``_z`` token, such as a reaction's) relative to the vector's largest: a component
that vanishes by symmetry holds only the solver's rounding, which moves with the machine and the
libraries' builds. Timings, paths and plots are left out (they are not results). A refactoring
must not move any recorded number.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SKIP = ("wall_s", "timings_s", "timings", "seconds", "_s_this_run", "oracle_seconds", "fine_tune_s", "plots",
        "atom_steps_per_s", "steps_per_s", "step_us", "ns_per_day", "per_s_wall", "elapsed", "throughput",
        "norm_error", "left_on_grid")


def shipped_cases() -> list[Path]:
    cases = ROOT / "cases"
    found = [*cases.glob("cu_*/*.toml"), *cases.glob("dynamics/*.toml"), *cases.glob("active_learning/*.toml"),
             *cases.glob("multistate/*.toml")]
    return sorted(p for p in found if "cu_emt" not in str(p))


def numbers(report, prefix: str = "") -> dict[str, float]:
    """Flatten a report into {key path: number}, leaving out timings."""
    out = {}
    if isinstance(report, dict):
        for k, v in report.items():
            if any(s in str(k) for s in SKIP):
                continue
            out.update(numbers(v, f"{prefix}{k}."))
    elif isinstance(report, (list, tuple)):
        for k, v in enumerate(report):
            out.update(numbers(v, f"{prefix}{k}."))
    elif isinstance(report, bool):
        out[prefix[:-1]] = float(report)
    elif isinstance(report, (int, float)):
        out[prefix[:-1]] = float(report)
    return out


def run_all(only: str | None = None) -> dict[str, dict[str, float]]:
    import torch

    from tests.test_cases import run_tiny

    torch.set_num_threads(1)
    result = {}
    for path in shipped_cases():
        key = str(path.relative_to(ROOT / "cases"))
        if only and only not in key:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            report = run_tiny(path, Path(tmp))
        result[key] = numbers(report)
        print(f"{key}: {len(result[key])} numbers", file=sys.stderr)
    return result


def _scales(values: dict[str, float]) -> dict[str, float]:
    """Each key's scale: the largest magnitude among the components of its vector (the keys that
    differ from it only in an ``_x`` / ``_y`` / ``_z`` token), or its own."""
    def vector(k: str) -> str:
        return re.sub(r"_[xyz](?=_|$)", "_?", k)

    largest: dict[str, float] = {}
    for k, v in values.items():
        largest[vector(k)] = max(largest.get(vector(k), 0.0), abs(v) if v == v else 0.0)
    return {k: largest[vector(k)] for k in values}


def compare(recorded: dict, now: dict, rtol: float = 1e-10) -> list[str]:
    problems = []
    for case, values in recorded.items():
        if case not in now:
            continue
        scales = _scales(values)
        for k, v in values.items():
            w = now[case].get(k)
            if w is None:
                problems.append(f"{case}: {k} missing")
            elif abs(w - v) > rtol * max(abs(v), abs(w), scales[k], 1e-300) and not (v != v and w != w):
                problems.append(f"{case}: {k} = {w!r}, recorded {v!r}")
    return problems


if __name__ == "__main__":
    action, target = sys.argv[1], Path(sys.argv[2])
    only = sys.argv[3] if len(sys.argv) > 3 else None
    now = run_all(only)
    if action == "record":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    else:
        problems = compare(json.loads(target.read_text()), now)
        print("\n".join(problems) or "same numbers")
        sys.exit(1 if problems else 0)
