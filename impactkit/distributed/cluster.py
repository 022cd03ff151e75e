"""A Dask client for the engine: a running scheduler when an address is given, else a LocalCluster.

Workers get one thread each (the numerics are single-threaded numpy; processes give the
parallelism) and BLAS is kept to one thread inside them, as in the pandas engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from impactkit.errors import InputError


def _current_client():
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


#: Dask loggers whose routine notices reach a user as WARNING lines (a shuffle's plugin logs two
#: per exchange, and every pass over a regrouped panel is one): raised to ERROR for the CLI.
QUIET_LOGGERS = ("distributed.shuffle._scheduler_plugin",)


def quiet_dask_logs() -> None:
    """Keep Dask's routine shuffle notices out of the user's terminal (errors still print)."""
    import logging

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None,
                memory_limit: str | None = None, processes: bool = True) -> Iterator:
    """Yield a ``distributed.Client``.

    ``scheduler``: address of a running scheduler (``tcp://host:8786``, or a scheduler file path
    ending in ``.json``); ``None`` reuses the current default client if there is one, else starts
    a ``LocalCluster`` of ``n_workers`` (default: CPU count, at most 4) single-threaded workers with
    ``memory_limit`` each, closed on exit.
    """
    from distributed import Client, LocalCluster

    quiet_dask_logs()
    if scheduler:
        try:
            if scheduler.endswith(".json"):
                client = Client(scheduler_file=scheduler, timeout="10s")
            else:
                client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    existing = _current_client()
    if existing is not None:
        yield existing
        return
    workers = n_workers or max(1, min(4, os.cpu_count() or 1))
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=processes, memory_limit=memory_limit or "auto",
            dashboard_address=":0", env=env if processes else None))
        client = stack.enter_context(Client(cluster))
        yield client
