"""HCCL_ALGO-style algorithm selection: ``"level0:NA;level1:H-D_R"`` for every operator, or per operator
``"allreduce=level0:NA;level1:ring/allgather=level0:NA;level1:H-D_R"`` (``others=`` for the rest).

level0 is the intra-server algorithm, level1 the inter-server one; ``NA`` leaves a level to the
default (auto). With level2 and up (board, cabinet, SuperPoD, ...) the string names one algorithm per
level of the rank grid, ``hier:L0/L1/L2`` (NA there is ring; see levels.py). On a communicator that spans several servers with the same number of ranks each, a
collective with a hierarchical algorithm runs ``hier:LEVEL0/LEVEL1``; otherwise the one level that
exists (level0 within one server, level1 with one rank per server) names the algorithm, or the other
level if that one is NA.
"""
from __future__ import annotations

import os

# the environment variables that name the default algorithm, the first set wins
ENVIRONMENT = ("HCCL_SIM_ALGO", "HCCL_ALGO")

# HCCL operator names -> the collectives they govern
HCCL_OPS = {"allreduce": ("allreduce",), "allgather": ("allgather", "allgatherv"),
            "reducescatter": ("reduce_scatter", "reduce_scatterv"), "broadcast": ("broadcast",),
            "reduce": ("reduce",), "scatter": ("scatter",), "gather": ("gather",),
            "alltoall": ("alltoall", "alltoallv"), "alltoallv": ("alltoallv",), "barrier": ("barrier",)}


def default_algo(explicit: str | None = None) -> str:
    """The algorithm to use when the caller names none: ``explicit`` if given, else ``$HCCL_SIM_ALGO``,
    else ``$HCCL_ALGO`` (HCCL's variable, HCCL_ALGO syntax), else ``"auto"``. Every front end (bench,
    sweep, predict, Communicator, the torch backend) reads the environment through this function."""
    if explicit:
        return explicit
    for name in ENVIRONMENT:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    return "auto"


def algo_source(explicit: str | None = None) -> str:
    """Where ``default_algo(explicit)`` came from, for error messages: "--algo", "HCCL_SIM_ALGO=..." ..."""
    if explicit:
        return "--algo"
    for name in ENVIRONMENT:
        if os.environ.get(name, "").strip():
            return f"{name}={os.environ[name].strip()!r}{FROM_ENVIRONMENT}"
    return "--algo"


FROM_ENVIRONMENT = " (environment)"  # how algo_source marks a default taken from the environment


def all_algorithms() -> list[str]:
    """Every algorithm name of every collective, in registration order."""
    from . import BUILDERS
    return list(dict.fromkeys(name for table in BUILDERS.values() for name in table))


def validate(algo: str, where: str = "algo") -> None:
    """Raise ValueError (prefixed with ``where``) unless every name in ``algo`` is an algorithm of some
    collective (``auto``, ``NAME[:VARIANT]``, ``hier:A/B/...`` with each level's name checked) or ``algo``
    is a valid HCCL_ALGO string. Whether a known algorithm applies to a collective is decided per case
    (see ``applies``): one that does not is a case that cannot run, not a wrong argument."""
    if is_hccl_algo(algo):
        try:
            parse(algo)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return
    every = all_algorithms()
    name, _, variant = algo.partition(":")
    names = [name] + ([v for v in variant.split("/") if v] if name == "hier" else [])
    for i, part in enumerate(names):
        allowed = every + ["auto"] if i == 0 else [a for a in every if a != "hier"]
        if part not in allowed:
            inside = f" (a level of {algo!r})" if i else ""
            raise ValueError(f"{where}: {part!r}{inside} is not an algorithm; known: {', '.join(allowed)}"
                             + (", or HCCL_ALGO syntax such as 'level0:NA;level1:H-D_R'" if not i else ""))


def applies(collective: str, algo: str, known: list[str]) -> str | None:
    """None if ``algo`` (our name, HCCL_ALGO strings already turned into one; ``auto`` always applies)
    is among ``known``, the algorithms of ``collective``; else the reason it cannot run."""
    name = algo.partition(":")[0]
    if algo == "auto" or name in known:
        return None
    return f"{collective}: algorithm {name!r} does not apply (its algorithms: {', '.join(known)})"


def is_hccl_algo(text: str | None) -> bool:
    return bool(text) and "level" in text.lower()


def _levels(text: str, where: str) -> dict[int, str | None]:
    from . import BUILDERS  # noqa: F401  (every algorithm registered)
    from .registry import hccl_names
    names = hccl_names()  # HCCL's names (case-insensitive) -> ours; ours map to themselves
    levels: dict[int, str | None] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, name = part.partition(":")
        key = key.strip().lower()
        if not sep or not key.startswith("level") or not key[5:].isdigit():
            raise ValueError(f"HCCL_ALGO: {where}{part!r} is not 'levelN:ALGORITHM'")
        if name.strip().lower() not in names:
            raise ValueError(f"HCCL_ALGO: {where}level{key[5:]} algorithm {name.strip()!r} is not one of "
                             f"{', '.join(sorted(n for n in names if n != 'na'))} or NA")
        levels[int(key[5:])] = names[name.strip().lower()]
    return levels


def parse(text: str) -> dict[str, dict[int, str | None]]:
    """collective (or "others") -> {level: our algorithm name or None}."""
    if "=" not in text:
        return {"others": _levels(text, "")}
    out: dict[str, dict[int, str | None]] = {}
    for part in filter(None, (p.strip() for p in text.split("/"))):
        op, sep, levels = part.partition("=")
        key = op.strip().lower().replace("_", "")
        if not sep or (key not in HCCL_OPS and key != "others"):
            raise ValueError(f"HCCL_ALGO: operator {op.strip()!r} is not one of {', '.join(HCCL_OPS)} or others")
        for collective in HCCL_OPS.get(key, ("others",)):
            out[collective] = _levels(levels, f"{op.strip()}: ")
    return out


def to_algo(collective: str, text: str, hierarchical: bool, has_hier: bool, multi_level: str = "intra") -> str:
    """Our algorithm string for ``collective`` from an HCCL_ALGO string.

    ``hierarchical``: the communicator spans several equal servers; ``has_hier``: the collective has a
    hierarchical algorithm; ``multi_level``: which level a flat communicator is ("intra" one server,
    "inter" one rank per server)."""
    table = parse(text)
    levels = table.get(collective, table.get("others", {}))
    l0, l1 = levels.get(0), levels.get(1)
    if l0 is None and l1 is None and not any(levels.values()):
        return "auto"
    from .registry import whole_hierarchy
    whole = [name for name in levels.values() if name in whole_hierarchy()]
    if whole:  # HCCL's AHC: level1:AHC runs every level (level2 too); level0 names its intra-group algorithm
        return whole[0] + (f":{l0}/ring" if l0 and l0 not in whole_hierarchy() else "")
    if max(levels, default=0) >= 2 and has_hier:  # level2 and up: one algorithm per grid level (levels.py)
        return "hier:" + "/".join(levels.get(i) or "ring" for i in range(max(levels) + 1))
    if hierarchical and has_hier:
        return f"hier:{l0 or 'ring'}/{l1 or 'ring'}"
    first, second = (l0, l1) if multi_level == "intra" else (l1, l0)
    return first or second


def one_level(collective: str, variant: str, server_sizes: list[int]) -> str:
    """What ``hier[:INTRA/INTER]`` runs when the communicator has one level only, as HCCL does: on one
    server the intra-server (level0) algorithm alone; with one rank per server the inter-server (level1)
    one. Servers of unequal size are an error naming their sizes."""
    from . import hier_levels
    intra, inter = hier_levels(collective, variant)
    if len(server_sizes) == 1:
        return intra
    if set(server_sizes) == {1}:
        return inter
    raise ValueError(f"{collective}: 'hier' needs servers with the same number of ranks, got server sizes "
                     f"{server_sizes}; for servers of different sizes use ahc, HCCL's asymmetric hierarchical algorithm")
