"""Element types and reduce operations the collectives accept, with the names users type.

The names are nccl-tests' (``-d int8 uint8 int32 uint32 int64 uint64 half float double bfloat16 f8e4m3
f8e5m2``, nccl-tests/src/common.cu ``test_typenames``) and ours (fp32, bf16, ...). Every dtype moves
through every collective; a reduction needs torch to compute it on CPU (``check_reducible``).
"""
from __future__ import annotations

from functools import lru_cache

from typing import NamedTuple

# name -> (torch dtype attribute, bytes, floating); the order gives each a stable code for the cross-rank
# header (append only). Torch loads only when a torch dtype is asked for (DTYPES, DTYPE_CODES,
# DTYPE_NAMES, dtype_from_name): prediction needs only the item size (``element_type``).
_TYPES = {
    "fp32": ("float32", 4, True), "fp64": ("float64", 8, True), "fp16": ("float16", 2, True),
    "bf16": ("bfloat16", 2, True), "int8": ("int8", 1, False), "int32": ("int32", 4, False),
    "int64": ("int64", 8, False), "uint8": ("uint8", 1, False), "uint32": ("uint32", 4, False),
    "uint64": ("uint64", 8, False), "fp8_e4m3": ("float8_e4m3fn", 1, True), "fp8_e5m2": ("float8_e5m2", 1, True),
    "int16": ("int16", 2, False),  # gloo has no int16 kernel; the torch backend reduces it here
}
NAMES = tuple(_TYPES)  # the names users type, without loading torch
ALIASES = {
    "float": "fp32", "float32": "fp32", "double": "fp64", "float64": "fp64", "half": "fp16",
    "float16": "fp16", "bfloat16": "bf16", "char": "int8", "int": "int32", "long": "int64", "byte": "uint8",
    "short": "int16",
    "f8e4m3": "fp8_e4m3", "float8_e4m3fn": "fp8_e4m3", "e4m3": "fp8_e4m3",
    "f8e5m2": "fp8_e5m2", "float8_e5m2": "fp8_e5m2", "e5m2": "fp8_e5m2",
}


def __getattr__(name):
    if name in ("DTYPES", "DTYPE_CODES", "DTYPE_NAMES"):
        if "DTYPES" not in globals():
            import torch
            dtypes = {key: getattr(torch, attr) for key, (attr, _, _) in _TYPES.items()
                      if hasattr(torch, attr)}  # fp8: torch >= 2.1
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
    dtypes = __getattr__("DTYPES")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in dtypes:
        raise UnsupportedError(f"dtype {name!r} is not supported (supported: {', '.join(dtypes)})")
    return dtypes[key]


def check_dtype(dtype) -> None:
    element_type(dtype)


def check_op(op: str, dtype) -> None:
    """The op's name; any dtype may be named with it (``check_reducible`` says whether torch computes it).
    avg on integers is NCCL's: the sum divided by the rank count, truncated toward zero."""
    if op not in OP_CODES:
        raise UnsupportedError(f"reduce op {op!r} is not supported (supported: {', '.join(OPS)})")


def check_reducible(op: str, dtype: "torch.dtype") -> None:
    """Raise UnsupportedError naming the dtype when torch cannot compute ``op`` on it on CPU (uint32 and
    uint64 add, for instance), or when the result would not be right: fp8 would round after every
    step, where NPUs accumulate in a wider type."""
    check_op(op, dtype)
    problem = _reduce_problem(op, dtype)
    if problem:
        raise UnsupportedError(f"reduce op {op!r} on {element_type(dtype).name}: {problem}")


@lru_cache(maxsize=None)
def _reduce_problem(op: str, dtype: "torch.dtype") -> str:
    import torch
    if dtype.is_floating_point and dtype.itemsize == 1:
        return "fp8 reductions are not emulated (use them with allgather, broadcast, alltoall, ...)"
    try:  # ask torch itself: what it cannot do on CPU raises here
        x = torch.ones(2, dtype=dtype)
        reducer(op)(x, torch.ones(2, dtype=dtype))
        if op == "avg":
            average(x, 2)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return f"torch cannot compute it on CPU ({str(exc).splitlines()[0]})"
    return ""


def average(tensor: torch.Tensor, nranks: int) -> torch.Tensor:
    """Finish an avg in place: divide the sum by the rank count (integers: truncated toward zero, as NCCL)."""
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex:
        return tensor.div_(nranks)
    return tensor.div_(nranks, rounding_mode="trunc")


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
