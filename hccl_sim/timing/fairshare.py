"""Max-min fair sharing of links among flows (progressive filling), for both timing modes."""
from __future__ import annotations

import math

import numpy as np

_REL_TOL = 1e-12  # shares (and finish times) this close, relative, count as equal


def segment_filling(link: np.ndarray, hops: np.ndarray, capacity: np.ndarray,
                    weight: np.ndarray | None = None) -> np.ndarray:
    """Max-min fair rates by progressive filling, for flows given as consecutive runs of (link) entries: flow i's hops are the
    next ``hops[i]`` entries (every ``hops[i]`` >= 1), links numbered 0..len(capacity)-1. Works on the
    entries alone (no array per flow id), so its cost follows the flows given, not the id range. With
    ``weight``, flow i stands for ``weight[i]`` identical flows (same route, each getting the returned rate).
    A round freezes, at once, the flows of every link whose fair share is no larger than that of any link
    its flows cross (raising all rates together, such a link fills first whatever the others do), so rounds
    are few even where shares are many; a round is a few bincounts and segmented mins over the entries of
    the flows still unfrozen. Returns the rate (bytes/s) of each flow given, in order."""
    nlinks = len(capacity)
    cap = capacity.astype(np.float64)
    rate = np.zeros(len(hops))
    idx = np.arange(len(hops))  # the flows still unfrozen
    entry_weight = None if weight is None else np.repeat(np.asarray(weight, dtype=np.float64), hops)
    while len(link):
        users = np.bincount(link, weights=entry_weight, minlength=nlinks)
        share = np.full(nlinks, math.inf)
        np.divide(cap, users, out=share, where=users > 0)
        hop_share = share[link]
        starts = np.zeros(len(hops), dtype=np.int64)
        np.cumsum(hops[:-1], out=starts[1:])
        flow_min = np.minimum.reduceat(hop_share, starts)  # each flow's tightest share
        entry_min = np.repeat(flow_min, hops)
        not_bottleneck = np.zeros(nlinks, dtype=bool)  # links a flow crosses with a tighter share elsewhere
        not_bottleneck[link[hop_share > entry_min * (1 + _REL_TOL)]] = True
        hit = np.logical_or.reduceat(~not_bottleneck[link], starts)  # flows crossing a bottleneck link
        rate[idx[hit]] = flow_min[hit]
        frozen = np.repeat(hit, hops)
        taken = entry_min[frozen] if entry_weight is None else entry_min[frozen] * entry_weight[frozen]
        cap = np.maximum(cap - np.bincount(link[frozen], weights=taken, minlength=nlinks), 0.0)
        link, hops, idx = link[~frozen], hops[~hit], idx[~hit]
        if entry_weight is not None:
            entry_weight = entry_weight[~frozen]
    return rate


def padded_filling(routes: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``segment_filling`` for routes as rows of link ids, shape (flows, hops), padded with the id
    ``len(capacity) - 1`` of a link of infinite capacity that no flow is limited by (the exact engine's
    form: no per-call unpacking). Every row needs at least one real link. Same rounds, same float
    operations in the same order, so bit-identical rates."""
    nlinks, nflows = len(capacity), len(routes)
    cap = np.asarray(capacity, dtype=np.float64)  # never written: each round makes a new one
    rate, idx = None, None  # made when a second round comes (often none does)
    while len(routes):
        users = np.bincount(routes.ravel(), minlength=nlinks)
        hop_share = (cap / np.maximum(users, 1))[routes]  # read only where users > 0
        flow_min = hop_share.min(axis=1)  # each flow's tightest share
        not_bottleneck = np.zeros(nlinks, dtype=bool)  # links a flow crosses with a tighter share elsewhere
        not_bottleneck[routes[hop_share > flow_min[:, None] * (1 + _REL_TOL)]] = True
        keep = not_bottleneck[routes].all(axis=1)  # flows crossing no bottleneck link
        if not keep.any():  # the last round: every flow freezes at its tightest share
            if rate is None:
                return flow_min
            rate[idx] = flow_min
            break
        if rate is None:
            rate, idx = np.zeros(nflows), np.arange(nflows)  # idx: the flows still unfrozen, rows of ``routes``
        hit = ~keep
        rate[idx[hit]] = flow_min[hit]
        cap = np.maximum(cap - np.bincount(routes[hit].ravel(), weights=np.repeat(flow_min[hit], routes.shape[1]),
                                           minlength=nlinks), 0.0)
        routes, idx = routes[keep], idx[keep]
    return np.zeros(0) if rate is None else rate


def max_min_rates(routes: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Max-min fair rate of each flow, given as rows of link ids padded with -1 (0 for a row without links)."""
    valid = routes >= 0
    links, local = np.unique(routes[valid], return_inverse=True)
    hops = valid.sum(axis=1)
    rate = np.zeros(len(routes))
    rate[hops > 0] = segment_filling(local, hops[hops > 0], capacity[links])
    return rate
