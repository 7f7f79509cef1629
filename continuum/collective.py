"""Work done on one rank whose input errors every rank must see.

Reading a file, checking atoms or fitting a model often happens on one rank (the others wait in
the next collective). If that work raises, the other ranks must raise too, or they hang; and the
error must be the same input error everywhere, so the command line reports it once with exit 2.
"""

from __future__ import annotations


def on_root(comm, root: int, work, errors: tuple[type[Exception], ...], share: bool = True):
    """Run ``work()`` on ``root``. An exception of one of ``errors`` raised there is raised again,
    with the same type and message, on every rank; the result is broadcast (``share``) or
    returned on ``root`` only (None elsewhere). Other exceptions propagate on ``root`` alone (a
    bug: the caller's abort handler ends the other ranks)."""
    result, error = None, None
    if comm.rank == root:
        try:
            result = work()
        except errors as exc:
            error = (next(i for i, kind in enumerate(errors) if isinstance(exc, kind)), str(exc))
    error = comm.bcast(error, root=root)
    if error is not None:
        raise errors[error[0]](error[1]) from None
    return comm.bcast(result, root=root) if share else result
