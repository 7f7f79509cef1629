"""``multiscale run CASE.toml``: a thin layer over :func:`multiscale.api.run_case`.

Exit codes: 0 done, 2 bad input (case file, dataset, model file), 1 anything else. Under mpiexec
only rank 0 prints the error; the other ranks exit with the same code silently. That is right
for the errors every rank raises alike (input errors and a failed solve, whose checks are
collective); any other error is logged by the rank that raised it and ends every rank
(``fe_build.abort_other_ranks``).
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="multiscale", description="Concurrent atomistic-to-continuum simulation: run or check a TOML case file.",
        epilog="Exit codes: 0 done, 2 bad input (case file, dataset, model file), 1 the run failed. "
               "Case kinds with a finite-element body also run under mpiexec -n N.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a case file")
    run.add_argument("case", help="path to a TOML case file")
    run.add_argument("--resume", action="store_true", help="continue from the checkpoints of an earlier run")
    run.add_argument("--output", help="output folder (overrides [output] dir)")
    run.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    check = sub.add_parser("check", help="validate a case file and the files it names, without running it")
    check.add_argument("case")
    args = parser.parse_args(argv)

    from .api import launched_rank

    quiet = getattr(args, "quiet", False) or launched_rank() > 0  # under mpiexec rank 0 speaks for all
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from atomistic.active import ActiveLearningError
    from atomistic.md import MDBlowUp
    from continuum.errors import ContinuumSolveError

    from . import api
    from .errors import INPUT_ERRORS

    def error(message: str) -> None:
        """One line on stderr, from rank 0 only (every rank meets the same error)."""
        if api.launched_rank() == 0:
            print(message, file=sys.stderr)

    try:
        if args.command == "check":
            api.check_case(args.case)
            if api.launched_rank() == 0:
                print(f"{args.case}: ok")
            return 0
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():  # log lines above the progress bars, not through them
            api.run_case(args.case, resume=args.resume, output=args.output, progress=not args.quiet)
    except INPUT_ERRORS as exc:
        error(f"error: {exc}")
        return 2
    # the run failed; the message says where and what was kept
    except (MDBlowUp, ContinuumSolveError, ActiveLearningError) as exc:
        error(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        error("interrupted; rerun with --resume to continue from the last checkpoint")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
