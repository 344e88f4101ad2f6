"""Element types and reduce operations the collectives accept, with the names users type."""
from __future__ import annotations

from typing import NamedTuple

# name -> (torch dtype name, bytes, floating); the order gives each a stable code for the cross-rank header.
# Torch loads only when a torch dtype is asked for (DTYPES, DTYPE_CODES, DTYPE_NAMES): prediction needs none.
_TYPES = {
    "fp32": ("float32", 4, True), "fp64": ("float64", 8, True), "fp16": ("float16", 2, True),
    "bf16": ("bfloat16", 2, True), "int8": ("int8", 1, False), "int32": ("int32", 4, False),
    "int64": ("int64", 8, False), "uint8": ("uint8", 1, False), "int16": ("int16", 2, False),
}
ALIASES = {
    "float": "fp32", "float32": "fp32", "double": "fp64", "float64": "fp64", "half": "fp16",
    "float16": "fp16", "bfloat16": "bf16", "char": "int8", "int": "int32", "long": "int64", "byte": "uint8", "short": "int16",
}


def __getattr__(name):
    if name in ("DTYPES", "DTYPE_CODES", "DTYPE_NAMES"):
        if "DTYPES" in globals():
            return globals()[name]
        import torch
        dtypes = {key: getattr(torch, torch_name) for key, (torch_name, _, _) in _TYPES.items()}
        globals().update(DTYPES=dtypes, DTYPE_CODES={dtype: code for code, dtype in enumerate(dtypes.values())},
                         DTYPE_NAMES={dtype: key for key, dtype in dtypes.items()})
        return globals()[name]
    raise AttributeError(name)


class ElementType(NamedTuple):
    """An element type without torch: its name, bytes per element and whether it is floating point."""
    name: str
    itemsize: int
    is_floating_point: bool


def element_type(dtype) -> ElementType:
    """The ElementType of a name ("fp32", "bf16", "float", ...), a torch dtype or an ElementType;
    raises UnsupportedError for others."""
    if isinstance(dtype, ElementType):
        return dtype
    if isinstance(dtype, str):
        key = ALIASES.get(dtype.lower(), dtype.lower())
        if key not in _TYPES:
            raise UnsupportedError(f"dtype {dtype!r} is not supported (supported: {', '.join(_TYPES)})")
    else:
        key = __getattr__("DTYPE_NAMES").get(dtype)  # a torch dtype: torch is loaded already
        if key is None:
            raise UnsupportedError(f"dtype {dtype} is not supported (supported: {', '.join(_TYPES)})")
    _, itemsize, floating = _TYPES[key]
    return ElementType(key, itemsize, floating)


OPS = ("sum", "prod", "max", "min", "avg")
OP_CODES = {op: code for code, op in enumerate(OPS)}


class UnsupportedError(ValueError):
    """A dtype or reduce op the emulator does not support."""


def dtype_from_name(name: str) -> "torch.dtype":
    """The torch dtype of a name or alias (loads torch)."""
    return __getattr__("DTYPES")[element_type(name).name]


def check_dtype(dtype) -> None:
    element_type(dtype)


def check_op(op: str, dtype) -> None:
    if op not in OP_CODES:
        raise UnsupportedError(f"reduce op {op!r} is not supported (supported: {', '.join(OPS)})")
    if op == "avg" and not dtype.is_floating_point:
        raise UnsupportedError(f"reduce op 'avg' needs a floating dtype, got {element_type(dtype).name}")


def reducer(op: str):
    """In-place ``x = op(x, y)`` on torch tensors; avg reduces as a sum and divides at the end."""
    import torch
    if op in ("sum", "avg"):
        return lambda x, y: x.add_(y)
    if op == "prod":
        return lambda x, y: x.mul_(y)
    if op == "max":
        return lambda x, y: torch.maximum(x, y, out=x)
    if op == "min":
        return lambda x, y: torch.minimum(x, y, out=x)
    raise UnsupportedError(f"reduce op {op!r} is not supported (supported: {', '.join(OPS)})")
