"""Where runs execute: serially, in a local process pool, or on Ray — with identical results.

Every job is a pure function of its :class:`~experiments.runner.run.Job` (seeded streams,
single-threaded BLAS inside the job), and results are put back in job order, so the backend, the
number of workers and stacking change only the wall time (and the measured decisions/s).

With ``stack=True`` (the default) the jobs of one (scenario, policy) — its scenario seeds — form
one *unit*, run as a single stacked vector env with the policy's state batched over the seeds
(:func:`~experiments.runner.run.run_stack`); RL agents, which train one network per seed, stay
one job per unit. Units are what the workers receive.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm

from experiments.runner.run import Job, RunResult, run_stack, stackable

BACKENDS = ("local", "ray")
RAY_CONNECT_TIMEOUT = 20.0
"""Seconds to wait for a Ray cluster address to answer (``ADSIM_RAY_TIMEOUT`` overrides)."""


def check_ray_address(address: str, timeout: float | None = None) -> None:
    """Raise ``ValueError`` unless ``host:port`` of a Ray address accepts a TCP connection within
    ``timeout`` seconds (``ray.init`` itself waits forever for an address that does not answer)."""
    import socket

    if address in ("auto", "local"):
        return
    if timeout is None:
        timeout = float(os.environ.get("ADSIM_RAY_TIMEOUT", RAY_CONNECT_TIMEOUT))
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"Ray address {address!r} must be host:port (or ray://host:port, or 'auto')")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ValueError(f"Ray address {address!r} does not answer within {timeout:g} s ({err}); is the "
                              "cluster running? (ADSIM_RAY_TIMEOUT sets the wait)") from err


def make_units(jobs: Sequence[Job], stack: bool = True) -> list[list[int]]:
    """Job indices grouped into units: one per (scenario, policy) when stacking, else one per job."""
    if not stack:
        return [[i] for i in range(len(jobs))]
    can_stack: dict[int, bool] = {}
    units: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.policy not in can_stack:
            can_stack[job.policy] = stackable(job)
        key = (job.scenario, job.policy) if can_stack[job.policy] else (job.scenario, job.policy, job.seed)
        units.setdefault(key, []).append(i)
    return list(units.values())


Stream = Iterator[tuple[list[int], list[RunResult]]]


def _serial(jobs: Sequence[Job], units: list[list[int]]) -> Stream:
    for unit in units:
        yield unit, run_stack([jobs[i] for i in unit])


def _process_pool(jobs: Sequence[Job], units: list[list[int]], workers: int) -> Stream:
    # spawn: fresh interpreters, no state inherited from the parent (threads, BLAS pools, caches)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_stack, [jobs[i] for i in unit]): unit for unit in units}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:  # a failed run (or Ctrl-C) stops the queued ones too
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ray(jobs: Sequence[Job], units: list[list[int]], workers: int, address: str | None) -> Stream:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is in the dev extra
        raise RuntimeError("--backend ray needs Ray: pip install 'adsim[ray]'") from err
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = not ray.is_initialized()
    if started:
        if address:
            check_ray_address(address)
        local = {} if address else {"num_cpus": workers, "include_dashboard": False}
        # local workers inherit this process's environment (PYTHONPATH) and find the code
        ray.init(address=address, log_to_driver=False, **local)
    try:
        task = ray.remote(num_cpus=1)(run_stack)
        refs = {task.remote([jobs[i] for i in unit]): unit for unit in units}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            yield refs[done[0]], ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def run_jobs(jobs: Sequence[Job], workers: int = 1, backend: str = "local", address: str | None = None,
             progress: bool = True, on_result: Callable[[int, RunResult], None] | None = None,
             stack: bool = True) -> list[RunResult]:
    """Run every job and return the results in job order.

    Args:
        jobs: the runs to do.
        workers: parallel workers; ``1`` with the local backend runs serially in this process.
        backend: ``"local"`` (process pool) or ``"ray"`` (cluster at ``address`` or
            ``RAY_ADDRESS``; a local Ray with ``workers`` CPUs when neither is given).
        address: Ray cluster address.
        progress: show a tqdm bar (ticks per finished run).
        on_result: called with (job index, result) as each run finishes.
        stack: run the seeds of a (scenario, policy) stacked in one vector env (see the module
            docstring); the results are the same either way.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend == {backend!r}, must be one of {BACKENDS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers == {workers!r}, must be an int >= 1")
    if not isinstance(stack, bool):
        raise TypeError(f"stack must be a bool, got {type(stack).__name__} {stack!r}")
    units = make_units(jobs, stack)
    if backend == "ray":
        stream = _ray(jobs, units, workers, address)
    elif workers == 1 or len(units) <= 1:
        stream = _serial(jobs, units)
    else:
        stream = _process_pool(jobs, units, min(workers, len(units)))
    results: list[RunResult | None] = [None] * len(jobs)
    with tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress) as bar:
        for unit, unit_results in stream:
            for i, result in zip(unit, unit_results):
                results[i] = result
                if on_result is not None:
                    on_result(i, result)
            bar.update(len(unit))
    return results  # type: ignore[return-value]
