"""Where runs execute: serially, in a local process pool, or on Ray — with identical results.

Every job is a pure function of its :class:`~experiments.runner.run.Job` (seeded streams,
single-threaded BLAS inside the job), and results are put back in job order, so the backend and
the number of workers change only the wall time (and the measured decisions/s).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm

from experiments.runner.run import Job, RunResult, run_job

BACKENDS = ("local", "ray")


def _serial(jobs: Sequence[Job]) -> Iterator[tuple[int, RunResult]]:
    for i, job in enumerate(jobs):
        yield i, run_job(job)


def _process_pool(jobs: Sequence[Job], workers: int) -> Iterator[tuple[int, RunResult]]:
    # spawn: fresh interpreters, no state inherited from the parent (threads, BLAS pools, caches)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:  # a failed run (or Ctrl-C) stops the queued ones too
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ray(jobs: Sequence[Job], workers: int, address: str | None) -> Iterator[tuple[int, RunResult]]:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is in the dev extra
        raise RuntimeError("--backend ray needs Ray: pip install 'adsim[ray]'") from err
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": workers, "include_dashboard": False}
        # local workers inherit this process's environment (PYTHONPATH) and find the code
        ray.init(address=address, log_to_driver=False, **local)
    try:
        task = ray.remote(num_cpus=1)(run_job)
        refs = {task.remote(job): i for i, job in enumerate(jobs)}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            yield refs[done[0]], ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def run_jobs(jobs: Sequence[Job], workers: int = 1, backend: str = "local", address: str | None = None,
             progress: bool = True, on_result: Callable[[int, RunResult], None] | None = None) -> list[RunResult]:
    """Run every job and return the results in job order.

    Args:
        jobs: the runs to do.
        workers: parallel workers; ``1`` with the local backend runs serially in this process.
        backend: ``"local"`` (process pool) or ``"ray"`` (cluster at ``address`` or
            ``RAY_ADDRESS``; a local Ray with ``workers`` CPUs when neither is given).
        address: Ray cluster address.
        progress: show a tqdm bar (one tick per finished run).
        on_result: called with (job index, result) as each run finishes.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend == {backend!r}, must be one of {BACKENDS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers == {workers!r}, must be an int >= 1")
    if backend == "ray":
        stream = _ray(jobs, workers, address)
    elif workers == 1 or len(jobs) <= 1:
        stream = _serial(jobs)
    else:
        stream = _process_pool(jobs, min(workers, len(jobs)))
    results: list[RunResult | None] = [None] * len(jobs)
    with tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress) as bar:
        for i, result in stream:
            results[i] = result
            if on_result is not None:
                on_result(i, result)
            bar.update(1)
    return results  # type: ignore[return-value]
