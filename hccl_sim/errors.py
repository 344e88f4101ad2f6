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
