"""Quantities as users write them: sizes with K/M/G (powers of 1024, as nccl-tests), bandwidths in
bytes/s with decimal prefixes (GB/s = 1e9), times with s/ms/us/ns."""
from __future__ import annotations

import math
import re

_BINARY = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_DECIMAL = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_size(text: str | int) -> int:
    """'8K' -> 8192, '64M', '1G', '1000', '1.5K' (nccl-tests takes fractions too) -> bytes.

    A fraction must come to a whole number of bytes ('1.5K' = 1536; '1.3K' is an error)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"size {text!r}: expected a number with an optional K, M, G or T suffix")
    scale = _BINARY[m.group(2).upper()]
    if "." not in m.group(1):
        return int(m.group(1)) * scale
    whole, _, frac = m.group(1).partition(".")
    numerator = int(whole or "0") * 10 ** len(frac) + int(frac or "0")  # exact: no float rounding
    nbytes, rest = divmod(numerator * scale, 10 ** len(frac))
    if rest:
        raise ValueError(f"size {text!r}: is not a whole number of bytes")
    return nbytes


def _number(text: str, what: str) -> tuple[float, str]:
    m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z/]*)\s*", str(text))
    if not m:
        raise ValueError(f"{what} {text!r}: not a number")
    try:
        return float(m.group(1)), m.group(2)
    except ValueError:
        raise ValueError(f"{what} {text!r}: not a number") from None


def parse_bandwidth(text: str | float) -> float:
    """'392GB/s', '392G', '3.92e11' -> bytes/s."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        value, unit = _number(text, "bandwidth")
        unit = unit.removesuffix("/s").removesuffix("B").removesuffix("b" if unit.endswith("b/s") else "")
        if unit.upper() not in _DECIMAL:
            raise ValueError(f"bandwidth {text!r}: unknown unit (use B/s, KB/s, MB/s, GB/s, TB/s)")
        value *= _DECIMAL[unit.upper()]
        if str(text).rstrip().endswith("b/s"):  # bits
            value /= 8
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"bandwidth {text!r}: must be positive and finite")
    return value


def parse_rate(text: str | float) -> float:
    """A bandwidth, or 'inf' for a rate that costs nothing (an NPU's reduce rate by default)."""
    return math.inf if str(text).strip().lower() == "inf" else parse_bandwidth(text)


def parse_time(text: str | float) -> float:
    """'1.2us', '500ns', '0.001' (seconds) -> seconds."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        value, unit = _number(text, "time")
        if unit and unit not in _TIME:
            raise ValueError(f"time {text!r}: unknown unit (use s, ms, us or ns)")
        value *= _TIME.get(unit, 1.0)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time {text!r}: must be finite and >= 0")
    return value


def format_size(n: int) -> str:
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def format_bandwidth(bw: float) -> str:
    for suffix, scale in (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6)):
        if bw >= scale:
            return f"{bw / scale:g} {suffix}"
    return f"{bw:g} B/s"


def format_time(t: float) -> str:
    for suffix, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:g} {suffix}"
    return f"{t * 1e9:g} ns"
