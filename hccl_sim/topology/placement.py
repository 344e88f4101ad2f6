"""Placement of ranks onto NPUs: which NPU each rank stands in for.

A placement is a policy name with an optional argument, a list of NPU indices, or None (the topology's
own default, else ``linear``). Each policy is one function registered in ``POLICIES``:

    linear                  rank r on NPU r (the default)
    spread                  round-robin over the level-0 groups (servers)
    per-group:K[@LEVEL]     K ranks in each group of a level (level 0 unless @LEVEL)
    list:0,4,1,5            the NPUs named, in rank order

``hosts`` (one modeled server per host) needs the hosts' names, which only an MPI job knows:
``host_placement`` turns it into a ``list:`` placement before a communicator is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .core import Topology, TopologyError


@dataclass(frozen=True)
class Policy:
    """A placement policy: ``place(nranks, topology, argument)`` gives each rank's NPU; ``usage`` is
    its form in help and errors (``argument`` is "" for a policy that takes none)."""
    place: Callable[[int, Topology, str], list[int]]
    usage: str
    takes_argument: bool = False


def _linear(nranks: int, topology: Topology, argument: str) -> list[int]:
    return list(range(nranks))


def _spread(nranks: int, topology: Topology, argument: str) -> list[int]:
    group = topology.levels[0].size
    ngroups = topology.num_npus // group
    return [(r % ngroups) * group + r // ngroups for r in range(nranks)]


def _per_group(nranks: int, topology: Topology, argument: str) -> list[int]:
    count, _, level_name = argument.partition("@")
    try:
        k = int(count)
    except ValueError as exc:
        raise TopologyError(f"placement: {'per-group:' + argument!r} needs an integer, as per-group:4 or "
                            "per-group:4@rack") from exc
    level = topology.level_index(level_name, "placement") if level_name else 0
    group = int(topology.strides[level]) * topology.levels[level].size
    if not 1 <= k <= group:
        raise TopologyError(f"placement: per-group:{k} needs 1..{group} ranks per {topology.levels[level].name}")
    return [(r // k) * group + r % k for r in range(nranks)]


def _listed(nranks: int, topology: Topology, argument: str) -> list[int]:
    try:
        return [int(x) for x in argument.split(",") if x.strip()]
    except ValueError as exc:
        raise TopologyError(f"placement: {'list:' + argument!r} is not a comma-separated list of NPU indices") from exc


POLICIES = {
    "linear": Policy(_linear, "linear"),
    "spread": Policy(_spread, "spread"),
    "per-group": Policy(_per_group, "per-group:K[@LEVEL]", takes_argument=True),
    "list": Policy(_listed, "list:0,1,...", takes_argument=True),
}
HOSTS_USAGE = "hosts under mpirun: one modeled server per MPI host"


@dataclass(frozen=True)
class Placement:
    """Which NPU each rank stands in for."""
    npus: tuple[int, ...]

    @classmethod
    def build(cls, spec: str | list[int] | None, nranks: int, topology: Topology) -> "Placement":
        """The placement ``spec`` of ``nranks`` ranks on ``topology``. Raises TopologyError naming the
        policy, the NPU or the count at fault."""
        n = topology.num_npus
        if nranks > n:
            raise TopologyError(f"placement: {nranks} ranks need more NPUs than {topology.name} has ({n})")
        if spec is None:
            spec = topology.placement
        if spec is None:
            spec = "linear"
        if isinstance(spec, (list, tuple)):
            npus = [int(x) for x in spec]
        else:
            name, sep, argument = spec.partition(":")
            policy = POLICIES.get(name)
            if policy is None or bool(sep) != policy.takes_argument:
                raise TopologyError(f"placement: unknown placement {spec!r} ("
                                    + ", ".join(p.usage for p in POLICIES.values()) + f", or {HOSTS_USAGE})")
            npus = policy.place(nranks, topology, argument)
        if len(npus) != nranks:
            raise TopologyError(f"placement: {len(npus)} NPUs given for {nranks} ranks")
        bad = [p for p in npus if not 0 <= p < n]
        if bad:
            raise TopologyError(f"placement: NPU {bad[0]} is outside {topology.name} (0..{n - 1})")
        if len(set(npus)) != len(npus):
            raise TopologyError("placement: two ranks are placed on the same NPU")
        return cls(tuple(npus))


def host_placement(spec, host_names: list[str], topology) -> str:
    """``hosts``: each host (as MPI names it, one name per rank) is one modeled level-0 group (server); its
    ranks go onto that group's NPUs in rank order, as a ``list:`` placement. Other placements are returned
    unchanged. ``topology``: a Topology or a spec for load_topology."""
    if spec != "hosts":
        return spec
    if not isinstance(topology, Topology):
        from .registry import load_topology  # registry -> files -> placement: imported when used
        topology = load_topology(topology, len(host_names))
    group = topology.levels[0].size
    hosts = list(dict.fromkeys(host_names))
    seen: dict[str, int] = {}
    npus = []
    for name in host_names:
        local = seen.get(name, 0)
        seen[name] = local + 1
        if local >= group:
            raise TopologyError(f"placement hosts: host {name} runs more ranks than a level-0 group of the topology "
                                f"holds ({group}); choose a topology with larger servers")
        npus.append(hosts.index(name) * group + local)
    return "list:" + ",".join(map(str, npus))
