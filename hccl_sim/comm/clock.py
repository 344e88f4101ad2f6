"""A rank's modeled clock: one small object its holders share instead of copying a float around."""


class Clock:
    """Modeled seconds, ``now``. A Communicator's calls start at ``now`` and leave it at their end; the
    torch backend's process groups of one process all hold its timeline's, which sets it to when an
    operation issued now starts (``hccl_sim.torch.timeline``)."""
    __slots__ = ("now",)

    def __init__(self, now: float = 0.0):
        self.now = float(now)

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) of modeled compute."""
        if not seconds >= 0:
            raise ValueError(f"advance: seconds must be >= 0, got {seconds!r}")
        self.now += float(seconds)
        return self.now

    def __repr__(self) -> str:
        return f"Clock({self.now!r})"
