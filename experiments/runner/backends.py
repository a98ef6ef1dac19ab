"""Where runs execute: serially, in a local process pool, or on Ray — with identical results.

Every job is a pure function of its :class:`~experiments.runner.run.Job` (seeded streams,
single-threaded BLAS inside the job), and results are put back in job order, so the backend, the
number of workers and stacking change only the wall time (and the measured decisions/s).

With ``stack=True`` (the default) the jobs of one (scenario, policy) — its scenario seeds — form
one *unit*, run as a single stacked vector env with the policy's state batched over the seeds
(:func:`~experiments.runner.run.run_stack`); RL agents, which train one network per seed, stay
one job per unit. Units are what the workers receive.

Stopping: SIGINT and SIGTERM of the parent raise ``KeyboardInterrupt`` there, which terminates the
pool's workers (and cancels Ray tasks) before it propagates; workers also die with the parent if
it is killed (``PR_SET_PDEATHSIG`` on Linux), so no worker outlives a run. A run that fails raises
:class:`RunFailed` naming it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm

from experiments.runner.run import Job, RunResult, generator_worlds, run_unit, stackable, uses_generator

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


class RunFailed(RuntimeError):
    """A run raised: the message names the run(s) of the unit and the error."""


def _unit_name(jobs: Sequence[Job], unit: list[int]) -> str:
    first = jobs[unit[0]]
    if len(unit) == 1:
        return first.name
    seeds = ",".join(str(jobs[i].seed) for i in unit)
    return first.name.rsplit("/", 1)[0] + f"/seeds[{seeds}]"


WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread-count variables a pool worker sets to 1 (unless the user set them): the workers already
use every core, and a library loaded in a run (torch's OpenMP, for a learned CTR model) would
otherwise start a thread per core in each worker — measured: the main job at one seed took 131 s
of runs on 2 workers against 43 s with one thread each (69 s serially), with identical results."""


def _worker_init() -> None:
    """In each pool worker: one thread per library, die with the parent (Linux), and leave Ctrl-C
    to the parent, which terminates the workers itself."""
    for var in WORKER_THREAD_VARS:
        os.environ.setdefault(var, "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the parent while runs are in flight (like Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def make_units(jobs: Sequence[Job], stack: bool = True, todo: Sequence[int] | None = None) -> list[list[int]]:
    """Job indices (of ``todo``, default all) grouped into units: one per (scenario, policy) when
    stacking, else one per job. Jobs of another study kind are grouped by their ``unit_key`` (OPE:
    the logs of one world) when stacking, else one per job."""
    todo = range(len(jobs)) if todo is None else todo
    if not stack:
        return [[i] for i in todo]
    can_stack: dict[tuple[int, int], bool] = {}
    units: dict[tuple, list[int]] = {}
    for i in todo:
        job = jobs[i]
        if not isinstance(job, Job):  # another study kind: grouped by its unit_key (an OPE log: its world)
            units.setdefault(("kind", type(job).__name__, getattr(job, "unit_key", i)), []).append(i)
            continue
        pair = (job.scenario, job.policy)
        if pair not in can_stack:
            can_stack[pair] = stackable(job)
        key = pair if can_stack[pair] else (job.scenario, job.policy, job.seed)
        units.setdefault(key, []).append(i)
    return list(units.values())


Stream = Iterator[tuple[list[int], list[RunResult]]]


def _failed(jobs: Sequence[Job], unit: list[int], err: BaseException) -> RunFailed:
    return RunFailed(f"run {_unit_name(jobs, unit)} failed: {type(err).__name__}: {err}")


def _serial(jobs: Sequence[Job], units: list[list[int]]) -> Stream:
    for unit in units:
        try:
            results = run_unit([jobs[i] for i in unit])
        except Exception as err:
            raise _failed(jobs, unit, err) from err
        yield unit, results


def _process_pool(jobs: Sequence[Job], units: list[list[int]], workers: int) -> Stream:
    # spawn: fresh interpreters, no state inherited from the parent (threads, BLAS pools, caches);
    # they get the parent's sys.path, so a policy named by import path resolves there too
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
    try:
        # The pool hands out tasks in submission order. First each generated world is warmed once, in
        # the generator's store (a unit would otherwise decode every world it stacks in every worker);
        # the generated units go last, when their worlds are stored, and load them.
        from adsim.generator.scenario import warm_generator

        warm = [pool.submit(warm_generator, directory, config)
                for directory, config in generator_worlds([jobs[i] for unit in units for i in unit])]
        units = sorted(units, key=lambda unit: uses_generator(jobs[unit[0]]))
        futures = {pool.submit(run_unit, [jobs[i] for i in unit]): unit for unit in units}
        for fut in warm:
            fut.result()  # a failure here would fail its runs too: raise it first
        for fut in as_completed(futures):
            try:
                results = fut.result()
            except Exception as err:
                raise _failed(jobs, futures[fut], err) from err
            yield futures[fut], results
    except BaseException:  # a failed run, Ctrl-C or SIGTERM: stop the running workers, drop the queued
        for proc in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


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
        # local workers get this process's sys.path, so they import the code and any policy named by
        # import path; on a cluster, ship your code with RAY_RUNTIME_ENV / ray.init(runtime_env=…)
        path = os.pathsep.join(p for p in sys.path if p)
        local = {} if address else {"num_cpus": workers, "include_dashboard": False,
                                    "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
        ray.init(address=address, log_to_driver=False, **local)
    waiting: list = []
    try:
        task = ray.remote(num_cpus=1)(run_unit)
        refs = {task.remote([jobs[i] for i in unit]): unit for unit in units}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            try:
                results = ray.get(done[0])
            except Exception as err:
                cause = getattr(err, "cause", None) or err
                raise _failed(jobs, refs[done[0]], cause) from err
            yield refs[done[0]], results
    finally:
        for ref in waiting:  # interrupted or failed: nothing keeps running on the cluster
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def run_jobs(jobs: Sequence[Job], workers: int = 1, backend: str = "local", address: str | None = None,
             progress: bool = True, on_result: Callable[[int, RunResult], None] | None = None,
             stack: bool = True, done: dict[int, RunResult] | None = None) -> list[RunResult]:
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
        done: results already at hand (job index -> result, e.g. from a resumed run): not rerun.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend == {backend!r}, must be one of {BACKENDS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers == {workers!r}, must be an int >= 1")
    if not isinstance(stack, bool):
        raise TypeError(f"stack must be a bool, got {type(stack).__name__} {stack!r}")
    done = dict(done or {})
    units = make_units(jobs, stack, [i for i in range(len(jobs)) if i not in done])
    if not units:
        stream: Stream = iter(())
    elif backend == "ray":
        stream = _ray(jobs, units, workers, address)
    elif workers == 1 or len(units) <= 1:
        stream = _serial(jobs, units)
    else:
        stream = _process_pool(jobs, units, min(workers, len(units)))
    results: list[RunResult | None] = [done.get(i) for i in range(len(jobs))]
    with _sigterm_as_interrupt(), tqdm(total=len(jobs), initial=len(done), desc="runs", unit="run",
                                       disable=not progress) as bar:
        try:
            for unit, unit_results in stream:
                for i, result in zip(unit, unit_results):
                    results[i] = result
                    if on_result is not None:
                        on_result(i, result)
                bar.update(len(unit))
        finally:
            if hasattr(stream, "close"):
                stream.close()  # an interrupt between units still stops the workers
    return results  # type: ignore[return-value]
