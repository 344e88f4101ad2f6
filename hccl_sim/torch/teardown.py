"""Process exit under torch.distributed: process groups are destroyed while the interpreter is whole.

Why: a gloo process group that outlives ``destroy_process_group()`` because a reference cycle holds it
(an FSDP or DDP model on that group, out of scope once the script's ``main()`` returned) is otherwise
freed by the collection inside interpreter finalization. Until then its worker threads are alive, and a
worker drops its last reference to a finished operation's tensors only under the GIL (torch 2.13 hands a
tensor's Python object back from C++ under the GIL, after checking ``Py_IsInitialized()``). If the script
ends within moments of that operation (the examples' ``--check`` all-gathers on a gloo group, prints,
exits), the worker can still be waiting for the GIL when finalization begins; CPython then ends it with
``pthread_exit`` inside a noexcept C++ destructor, and the process aborts with "terminate called without
an active exception" (torch issue #190489).

What: a Python ``atexit`` handler (these run before finalization) destroys the hccl_sim default group if
the script did not, then collects garbage. A group's destructor joins its worker threads with the GIL
released, so each finishes its operation first. A group the script still references at exit (a module
global) stays alive into finalization; this cannot reach it.
"""
from __future__ import annotations

import atexit
import gc

_installed = False


def install() -> None:
    """Register the exit handler (once). Handlers registered later, e.g. the script's, run before it."""
    global _installed
    if not _installed:
        atexit.register(destroy_at_exit)
        _installed = True


def destroy_at_exit() -> None:
    """Destroy the default group if it is hccl_sim's and still up; then free process groups that only
    garbage references, joining their threads. Sends and receives still queued (never waited for) are
    dropped unposted, as they were without this handler: exit waits for no peer."""
    import torch.distributed as dist

    from . import backend

    try:
        if dist.is_available() and dist.is_initialized() and dist.get_backend() == backend.BACKEND_NAME:
            backend._pending.clear()
            dist.destroy_process_group()
    finally:
        gc.collect()
