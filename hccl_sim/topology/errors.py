"""The error topology, placement and fault specs raise (its own module so that core.py and faults.py
both use it without importing each other)."""


class TopologyError(ValueError):
    """A topology or placement that cannot be built, naming the field at fault."""
