"""Measurements of real collectives, read from the files benchmarks write.

Formats (detected from the content):

- nccl-tests text output: its table ``size count type redop [root] time algbw busbw #wrong time algbw
  busbw #wrong`` (out-of-place then in-place columns; ``place`` picks one); ranks from the ``#  Rank``
  lines, the collective from ``# Collective test starting: all_reduce_perf``;
- nccl-tests ``-J`` JSON: ``{"config": {"devices": [...]}, "results": [{"size", "out_of_place":
  {"time", ...}, "in_place": {...}}]}`` (layout of nccl-tests' src/util.cu, JSON_FILE_VERSION 2);
- hccl_test output: ``data_size(Bytes): | aveg_time(us): | alg_bandwidth(GB/s): | check_result:``;
- CSV: ``#`` lines are comments (the first is kept as the source); a header with ``size_bytes`` and
  ``time_us``, or ``busbw_GBps`` or ``algbw_GBps`` to derive the time from (nccl-tests' definitions),
  optionally ``ranks`` and ``collective``, and a ``label`` to tell series apart. Aliases, for the way
  papers report MoE all-to-all: ``latency_us`` = time_us, ``ep`` = ranks, ``bw_per_rank_GBps`` =
  algbw_GBps, ``op`` = label; a row without a size gets algbw x time.

Units: bytes, seconds (files in microseconds), GB/s with GB = 1e9. Every error names the file, the
line and what was expected.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass


class MeasurementError(ValueError):
    """A measurements file that cannot be read, naming file, line and what was expected."""


@dataclass(frozen=True)
class Measurement:
    size: int  # bytes, nccl-tests' size of the call
    time: float  # seconds per call
    ranks: int | None = None
    collective: str | None = None
    label: str = ""  # series within a file (out-of-place/in-place, dispatch/combine, ...)
    where: str = ""  # "file:line"


# nccl-tests binaries -> our collectives
NCCL_TESTS_BINARIES = {"all_reduce": "allreduce", "all_gather": "allgather", "reduce_scatter": "reduce_scatter",
                       "broadcast": "broadcast", "reduce": "reduce", "alltoall": "alltoall", "scatter": "scatter",
                       "gather": "gather", "sendrecv": "send"}
CSV_ALIASES = {"size": "size_bytes", "bytes": "size_bytes", "latency_us": "time_us", "ep": "ranks",
               "nranks": "ranks", "bw_per_rank_gbps": "algbw_gbps", "op": "label", "series": "label"}


def _bus_factor(collective: str | None, ranks: int | None, where: str) -> float:
    from ..collectives import SPECS
    if collective not in SPECS or not ranks:
        raise MeasurementError(f"{where}: busbw needs the collective and the rank count to give a time "
                               f"(pass --collective and --ranks, or add collective and ranks columns)")
    factor = SPECS[collective].busbw_factor(ranks)
    if factor <= 0:
        raise MeasurementError(f"{where}: busbw of {collective} on {ranks} ranks gives no time")
    return factor


def _number(text: str, where: str, what: str, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        raise MeasurementError(f"{where}: expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (integer and value < 1 and what.startswith("a rank")):
        raise MeasurementError(f"{where}: expected {what}, got {text!r}")
    return value


def read_measurements(path: str, ranks: int | None = None, collective: str | None = None,
                      place: str = "out") -> tuple[list[Measurement], str]:
    """(measurements, source) from one file; ``ranks`` and ``collective`` fill in what the file does
    not say (a file's own value wins). ``place`` is ``out`` or ``in`` (nccl-tests columns)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MeasurementError(f"{path}:1: expected a text file (nccl-tests, hccl_test, CSV or JSON)") from None
    if place not in ("out", "in"):
        raise MeasurementError(f"place: expected 'out' or 'in', got {place!r}")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        rows, source = _nccl_json(path, text, ranks, collective, place)
    elif "data_size(Bytes)" in text:
        rows, source = _hccl_test(path, text, ranks, collective)
    elif re.search(r"^#\s+size\s+count\s+type", text, re.M) or "# nThread" in text:
        rows, source = _nccl_text(path, text, ranks, collective, place)
    else:
        rows, source = _csv(path, text, ranks, collective)
    if not rows:
        raise MeasurementError(f"{path}: no measurements found (expected nccl-tests or hccl_test output, "
                               f"nccl-tests -J JSON, or CSV with size_bytes and time_us)")
    return rows, source


def _nccl_collective(text: str, default: str | None) -> str | None:
    m = re.search(r"Collective test starting:\s*(\w+?)_perf", text)
    return NCCL_TESTS_BINARIES.get(m.group(1), default) if m else default


def _nccl_text(path, text, ranks, collective, place):
    collective = _nccl_collective(text, collective)
    listed = len(re.findall(r"^#\s+Rank\s+\d+\s+Group", text, re.M))
    ranks = listed or ranks
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or line.lstrip().startswith("#") or not tokens[0].isdigit():
            continue
        where = f"{path}:{n}"
        # size count type redop [root] then out-of-place (time algbw busbw #wrong) and in-place (the same)
        has_root = len(tokens) >= 5 and re.fullmatch(r"-?\d+", tokens[4]) is not None
        first = 5 if has_root else 4
        index = first if place == "out" else first + 4
        if len(tokens) <= index:
            raise MeasurementError(f"{where}: expected 'size count type redop root' and {place}-of-place "
                                   f"'time algbw busbw #wrong' columns, got {len(tokens)} columns")
        size = _number(tokens[0], where, "a size in bytes", integer=True)
        time_us = _number(tokens[index], where, f"the {place}-of-place time in us")
        rows.append(Measurement(int(size), time_us * 1e-6, ranks, collective, f"{place}-of-place", where))
    return rows, f"nccl-tests output {path}"


def _nccl_json(path, text, ranks, collective, place):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MeasurementError(f"{path}:{exc.lineno}: expected nccl-tests -J JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise MeasurementError(f"{path}:1: expected nccl-tests -J JSON with a 'results' list")
    config = data.get("config") or {}
    devices = config.get("devices") if isinstance(config, dict) else None
    ranks = len(devices) if isinstance(devices, list) and devices else ranks
    args = " ".join(str(a) for a in data.get("args", []))
    m = re.search(r"(\w+?)_perf", args)
    collective = NCCL_TESTS_BINARIES.get(m.group(1), collective) if m else collective
    key = "out_of_place" if place == "out" else "in_place"
    rows = []
    for i, r in enumerate(data["results"]):
        where = f"{path}: results[{i}]"
        if not isinstance(r, dict) or "size" not in r:
            raise MeasurementError(f"{where}: expected an object with 'size' and '{key}'")
        body = r.get(key)
        if not isinstance(body, dict) or ("time" not in body and "cpu_time" not in body):
            raise MeasurementError(f"{where}.{key}: expected an object with 'time' (us)")
        size = _number(str(r["size"]), where + ".size", "a size in bytes", integer=True)
        time_us = _number(str(body.get("time", body.get("cpu_time"))), f"{where}.{key}.time", "a time in us")
        rows.append(Measurement(int(size), time_us * 1e-6, ranks, collective, key.replace("_", "-"), where))
    return rows, f"nccl-tests JSON {path}"


def _hccl_test(path, text, ranks, collective):
    rows, inside = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if "data_size(Bytes)" in line:
            inside = True
            continue
        tokens = line.replace("|", " ").split()
        if not inside or not tokens or not tokens[0].isdigit():
            continue
        where = f"{path}:{n}"
        if len(tokens) < 2:
            raise MeasurementError(f"{where}: expected 'data_size aveg_time alg_bandwidth check_result'")
        size = _number(tokens[0], where, "data_size in bytes", integer=True)
        time_us = _number(tokens[1], where, "aveg_time in us")
        rows.append(Measurement(int(size), time_us * 1e-6, ranks, collective, "hccl_test", where))
    return rows, f"hccl_test output {path}"


def _csv(path, text, ranks, collective):
    lines = text.splitlines()
    comments = [(n, line) for n, line in enumerate(lines, 1) if line.lstrip().startswith("#")]
    source = comments[0][1].lstrip("# ").strip() if comments else f"CSV {path}"
    body = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    if not body:
        return [], source
    header_line, header = body[0][0], next(csv.reader(io.StringIO(body[0][1])))
    columns = [CSV_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in header]
    have = set(columns)
    if not ({"time_us", "busbw_gbps", "algbw_gbps"} & have) or not ({"size_bytes", "algbw_gbps"} & have):
        raise MeasurementError(f"{path}:{header_line}: expected a CSV header with size_bytes and time_us (or "
                               f"busbw_GBps / algbw_GBps), got {', '.join(header)}")
    rows = []
    for n, line in body[1:]:
        where = f"{path}:{n}"
        values = next(csv.reader(io.StringIO(line)))
        if len(values) != len(columns):
            raise MeasurementError(f"{where}: expected {len(columns)} values ({', '.join(header)}), got {len(values)}")
        row = dict(zip(columns, (v.strip() for v in values)))
        r = int(_number(row["ranks"], where, "a rank count in ranks", integer=True)) if row.get("ranks") else ranks
        coll = row.get("collective") or collective
        time = _number(row["time_us"], where, "a time in us (time_us)") * 1e-6 if row.get("time_us") else None
        if row.get("size_bytes"):
            size = _number(row["size_bytes"], where, "a size in bytes (size_bytes)", integer=True)
        elif time is not None:
            size = round(_number(row["algbw_gbps"], where, "algbw in GB/s") * 1e9 * time)
        else:
            raise MeasurementError(f"{where}: expected size_bytes, or time_us with algbw_GBps")
        if time is None:
            if row.get("busbw_gbps"):
                algbw = _number(row["busbw_gbps"], where, "busbw in GB/s (busbw_GBps)") / _bus_factor(coll, r, where)
            else:
                algbw = _number(row["algbw_gbps"], where, "algbw in GB/s (algbw_GBps)")
            if algbw <= 0:
                raise MeasurementError(f"{where}: expected a positive bandwidth to derive the time from")
            time = size / (algbw * 1e9)
        if size <= 0 or time <= 0:
            raise MeasurementError(f"{where}: expected a positive size and time, got {size} B, {time} s")
        rows.append(Measurement(int(size), time, r, coll, row.get("label", ""), where))
    return rows, source
