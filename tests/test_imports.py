"""The package structure: no import cycles, dependencies pointing experiments -> agents -> adsim, and
imports that do not load torch, Stable-Baselines3 or scikit-learn."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adsim", "agents", "experiments")
LAYER = {"adsim": 0, "agents": 1, "experiments": 2}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (functions included).

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``. Parent
    packages a submodule import runs implicitly are not edges (every package would then be a cycle
    with the submodules its ``__init__`` re-exports).
    """
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in mods and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "adsim.ctr.learned" in graph["adsim.envs.creative_selection"]  # a lazy import (torch)


def test_no_import_cycle_between_project_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_dependencies_point_experiments_to_agents_to_adsim():
    bad = [f"{m} imports {n}" for m, edges in import_graph().items() for n in edges
           if LAYER[n.split(".")[0]] > LAYER[m.split(".")[0]]]
    assert not bad, "; ".join(sorted(bad))


def test_importing_the_packages_loads_no_heavy_library():
    probe = ("import sys; import adsim; import agents; import agents.registry; "
             "print(sorted(k for k in ('torch', 'stable_baselines3', 'sklearn') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_lazy_registry_entry_loads_its_class_when_used():
    probe = ("import sys; from agents.registry import POLICIES; assert 'stable_baselines3' not in sys.modules; "
             "cls = POLICIES['ppo']; print(cls.__name__, 'stable_baselines3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["PPOPolicy", "True"], out.stdout + out.stderr


def test_the_imports_perf_suite_reads_importtime():
    from experiments.perf.imports import import_seconds

    seconds, heavy = import_seconds("agents")
    assert 0 < seconds < 60 and heavy == []


def test_a_runner_worker_imports_only_what_its_unit_needs():
    # a bandit run in a fresh interpreter (as a spawned worker gets it): the job arrives pickled, the
    # world needs scikit-learn (interest tags); torch, SB3, matplotlib and Ray stay unloaded (each worker
    # of an RL run imports torch and SB3 for itself)
    import pickle

    from experiments.runner import make_jobs, parse_config

    config = parse_config({"seeds": [0], "steps": 5, "batch_size": 8,
                           "scenarios": {"pool": {"preset": "easy", "n_users": 200, "n_products": 40}},
                           "policies": {"ucb1": {}}})
    (job,) = make_jobs(config)
    probe = ("import pickle, sys; jobs = pickle.loads(sys.stdin.buffer.read()); "
             "from experiments.runner.run import run_stack; run_stack(jobs); "
             "print(sorted(k for k in ('torch', 'stable_baselines3', 'matplotlib', 'ray') "
             "if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], input=pickle.dumps([job]), capture_output=True,
                         check=True, cwd=ROOT)
    assert out.stdout.decode().strip() == "[]", out.stdout + out.stderr


def test_a_pool_worker_runs_libraries_on_one_thread():
    # workers share the cores: torch (loaded by a run for a learned CTR model) gets one thread each
    probe = ("import os; [os.environ.pop(v, None) for v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')]; "
             "from experiments.runner.backends import _worker_init; _worker_init(); import torch; "
             "print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["1", "1"], out.stdout + out.stderr


def test_one_blas_thread_reaches_the_blas_a_policy_loads_on_first_use():
    # the ridge policies import scipy.linalg (SciPy's own OpenBLAS) on their first refit, inside the
    # limit; a plain threadpool_limits entered before that leaves it at a thread per core
    probe = ("import os, sys; [os.environ.pop(v, None) for v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS')]; "
             "from threadpoolctl import threadpool_info, threadpool_limits; "
             "from experiments.threads import one_blas_thread; "
             "limit = one_blas_thread if sys.argv[1] == 'ours' else lambda: threadpool_limits(limits=1, user_api='blas'); "
             "import numpy\n"
             "with limit():\n"
             "    import scipy.linalg\n"
             "    print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas' "
             "and 'scipy.libs' in i['filepath']}))")

    def threads(which: str) -> str:
        out = subprocess.run([sys.executable, "-c", probe, which], capture_output=True, text=True, check=True, cwd=ROOT)
        return out.stdout.strip()

    assert threads("ours") == "[1]"
    if (os.cpu_count() or 1) > 1:  # the hazard it removes (on one core there is none)
        assert threads("plain") != "[1]"
