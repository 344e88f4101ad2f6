"""The errors hccl_sim raises; importable without MPI."""


class CollectiveError(RuntimeError):
    """Raised on every rank when the ranks' calls do not agree or one rank's input is invalid."""


class CollectiveTimeout(TimeoutError):
    """A collective or receive could not complete in time; ``missing`` names the ranks it waited for."""

    def __init__(self, what: str, missing: list[int], timeout: float, cause: str = ""):
        self.missing = missing
        reason = f" ({cause})" if cause else " (dead, hung, or not making the same call)"
        super().__init__(f"{what}: timed out after {timeout:g} s waiting for rank(s) "
                         f"{', '.join(map(str, missing))}{reason}")


def abort_on_uncaught_timeout() -> None:
    """Make an uncaught CollectiveTimeout end the whole job: the missing rank would otherwise keep
    MPI_Finalize (and so every other rank) waiting. Explicit, once per process: the CLI and the torch
    backend call it; a script of its own calls it (or runs under ``python -m mpi4py``, which aborts on
    any uncaught exception). Other exceptions keep Python's behaviour."""
    import sys
    previous = sys.excepthook
    if getattr(previous, "aborts_on_timeout", False):
        return

    def hook(kind, value, tb):
        previous(kind, value, tb)
        if issubclass(kind, CollectiveTimeout):
            import os
            sys.stderr.flush()
            if "mpi4py.MPI" in sys.modules:
                sys.modules["mpi4py.MPI"].COMM_WORLD.Abort(1)
            os._exit(1)  # gloo: do not wait at exit for ranks that never come
    hook.aborts_on_timeout = True
    sys.excepthook = hook
