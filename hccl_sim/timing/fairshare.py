"""Max-min fair sharing of links among flows (progressive filling), for both timing modes."""
from __future__ import annotations

import math

import numpy as np

_REL_TOL = 1e-12  # shares (and finish times) this close, relative, count as equal


def progressive_filling(link: np.ndarray, flow: np.ndarray, nflows: int, capacity: np.ndarray) -> np.ndarray:
    """Max-min fair rates. Routes come as (link, flow) entries, one per hop, with links numbered
    0..len(capacity)-1 (fastest with each flow's entries side by side, in flow order, as every caller has them). A round freezes, at once, the flows of every link whose fair share is no larger
    than that of any link its flows cross (raising all rates together, such a link fills first whatever
    the others do), so rounds are few even where shares are many; a round is a few bincounts and one
    scatter-min over the hops of the flows still unfrozen."""
    nlinks = len(capacity)
    cap = capacity.astype(np.float64)
    ordered = bool(len(flow) < 2 or (flow[1:] >= flow[:-1]).all())  # kept by the filtering below
    rate = np.zeros(nflows)
    while len(link):
        users = np.bincount(link, minlength=nlinks)
        share = np.full(nlinks, math.inf)
        np.divide(cap, users, out=share, where=users > 0)
        hop_share = share[link]
        flow_min = np.full(nflows, math.inf)  # each flow's tightest share
        if ordered:  # each flow's hops side by side: a segmented min
            change = np.empty(len(flow), dtype=bool)
            change[0] = True
            np.not_equal(flow[1:], flow[:-1], out=change[1:])
            starts = np.flatnonzero(change)
            flow_min[flow[starts]] = np.minimum.reduceat(hop_share, starts)
        else:
            np.minimum.at(flow_min, flow, hop_share)
        not_bottleneck = np.zeros(nlinks, dtype=bool)  # links a flow crosses with a tighter share elsewhere
        not_bottleneck[link[hop_share > flow_min[flow] * (1 + _REL_TOL)]] = True
        hit = np.zeros(nflows, dtype=bool)
        hit[flow[~not_bottleneck[link]]] = True  # flows crossing a bottleneck link
        rate[hit] = flow_min[hit]
        frozen = hit[flow]
        cap = np.maximum(cap - np.bincount(link[frozen], weights=rate[flow[frozen]], minlength=nlinks), 0.0)
        link, flow = link[~frozen], flow[~frozen]
    return rate



def padded_filling(routes: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``progressive_filling`` for routes as rows of link ids, shape (flows, hops), padded with the id
    ``len(capacity) - 1`` of a link of infinite capacity that no flow is limited by (the exact engine's
    form: no per-call unpacking). Every row needs at least one real link. Same rounds, same float
    operations in the same order, so bit-identical rates."""
    nlinks, nflows = len(capacity), len(routes)
    cap = capacity.astype(np.float64)
    rate = np.zeros(nflows)
    idx = np.arange(nflows)  # the flows still unfrozen, rows of ``routes``
    while len(routes):
        users = np.bincount(routes.ravel(), minlength=nlinks)
        hop_share = (cap / np.maximum(users, 1))[routes]  # read only where users > 0
        flow_min = hop_share.min(axis=1)  # each flow's tightest share
        not_bottleneck = np.zeros(nlinks, dtype=bool)  # links a flow crosses with a tighter share elsewhere
        not_bottleneck[routes[hop_share > flow_min[:, None] * (1 + _REL_TOL)]] = True
        keep = not_bottleneck[routes].all(axis=1)  # flows crossing no bottleneck link
        if not keep.any():  # the last round: every flow freezes at its tightest share
            rate[idx] = flow_min
            break
        hit = ~keep
        rate[idx[hit]] = flow_min[hit]
        cap = np.maximum(cap - np.bincount(routes[hit].ravel(), weights=np.repeat(flow_min[hit], routes.shape[1]),
                                           minlength=nlinks), 0.0)
        routes, idx = routes[keep], idx[keep]
    return rate


def max_min_rates(routes: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Max-min fair rate of each flow, given as rows of link ids padded with -1."""
    valid = routes >= 0
    links, local = np.unique(routes[valid], return_inverse=True)
    return progressive_filling(local, np.nonzero(valid)[0], len(routes), capacity[links])
