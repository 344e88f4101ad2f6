"""Element types and reduce operations the collectives accept, with the names users type."""
from __future__ import annotations

import torch

# name -> torch dtype; the order gives each a stable code for the cross-rank header
DTYPES = {
    "fp32": torch.float32, "fp64": torch.float64, "fp16": torch.float16, "bf16": torch.bfloat16,
    "int8": torch.int8, "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8, "int16": torch.int16,
}
ALIASES = {
    "float": "fp32", "float32": "fp32", "double": "fp64", "float64": "fp64", "half": "fp16",
    "float16": "fp16", "bfloat16": "bf16", "char": "int8", "int": "int32", "long": "int64", "byte": "uint8", "short": "int16",
}
DTYPE_CODES = {dtype: code for code, dtype in enumerate(DTYPES.values())}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}

OPS = ("sum", "prod", "max", "min", "avg")
OP_CODES = {op: code for code, op in enumerate(OPS)}


class UnsupportedError(ValueError):
    """A dtype or reduce op the emulator does not support."""


def dtype_from_name(name: str) -> torch.dtype:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DTYPES:
        raise UnsupportedError(f"dtype {name!r} is not supported (supported: {', '.join(DTYPES)})")
    return DTYPES[key]


def check_dtype(dtype: torch.dtype) -> None:
    if dtype not in DTYPE_CODES:
        raise UnsupportedError(f"dtype {dtype} is not supported (supported: {', '.join(DTYPES)})")


def check_op(op: str, dtype: torch.dtype) -> None:
    if op not in OP_CODES:
        raise UnsupportedError(f"reduce op {op!r} is not supported (supported: {', '.join(OPS)})")
    if op == "avg" and not dtype.is_floating_point:
        raise UnsupportedError(f"reduce op 'avg' needs a floating dtype, got {DTYPE_NAMES.get(dtype, dtype)}")


def reducer(op: str):
    """In-place ``x = op(x, y)`` on torch tensors; avg reduces as a sum and divides at the end."""
    if op in ("sum", "avg"):
        return lambda x, y: x.add_(y)
    if op == "prod":
        return lambda x, y: x.mul_(y)
    if op == "max":
        return lambda x, y: torch.maximum(x, y, out=x)
    if op == "min":
        return lambda x, y: torch.minimum(x, y, out=x)
    raise UnsupportedError(f"reduce op {op!r} is not supported (supported: {', '.join(OPS)})")
