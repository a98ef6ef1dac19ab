"""The optional compiled pool-mode block (``adsim.compiled``, numba) gives the numbers of the NumPy path.

With numba installed every test here runs an env twice, with the kernels (``ADSIM_NUMBA`` unset)
and without (``ADSIM_NUMBA=0``), and compares every output bit for bit: observations, rewards,
infos, final observations at the autoreset. Without numba the comparisons are skipped and the
fallback tests check that the NumPy path is what runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from adsim import compiled
from adsim.config import make_config
from adsim.selection import SelectionCore

ROOT = Path(__file__).resolve().parents[1]
CS = "adsim/CreativeSelection-v0"


def _assert_same(a, b, where: str = "") -> None:
    """``a`` and ``b`` (nested dicts / tuples of arrays and scalars) equal bit for bit, dtypes included."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b), (where, type(a), type(b))
        x, y = np.ascontiguousarray(np.atleast_1d(a)), np.ascontiguousarray(np.atleast_1d(b))
        assert x.dtype == y.dtype and x.shape == y.shape, (where, x.dtype, y.dtype, x.shape, y.shape)
        assert np.array_equal(x.view(np.uint8) if x.dtype.kind == "f" else x,
                              y.view(np.uint8) if y.dtype.kind == "f" else y), where  # the bits, -0.0 and NaN too


def _episode(monkeypatch, numba: str, env_id: str = CS, num_envs: int | None = 64, steps: int = 25, seed=5,
             **kw) -> tuple[list, bool]:
    """Every output of ``steps`` steps (past an autoreset when the horizon is short) of a vector env
    (``num_envs``) or a single env (None), with the kernels on (``numba="1"``) or off, and whether the
    compiled block ran."""
    monkeypatch.setenv("ADSIM_NUMBA", numba)
    env = (gym.make(env_id, **kw) if num_envs is None else
           gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kw))
    core = env.unwrapped.core
    cores = getattr(core, "cores", [core])
    used = all(c.generator.kernels is not None for c in cores)
    out = [env.reset(seed=seed)]
    env.action_space.seed(0)
    for _ in range(steps):
        out.append(env.step(env.action_space.sample()))
    return out, used


needs_numba = pytest.mark.skipif(compiled.kernels() is None, reason="numba is not installed (or ADSIM_NUMBA=0)")


@needs_numba
@pytest.mark.parametrize("num_envs, kw", [
    (4096, {}),  # the perf suite's shape: one step per block
    (1024, {"reward": "conversion"}),  # four steps per block
    (33, {"reward": "revenue", "horizon": 9}),  # many steps per block, autoreset
    (7, {"n_candidates": 5, "horizon": 12}),  # K below the kernel's eight-candidate step
    (5, {"n_candidates": 19, "horizon": 6}),  # eight, eight and three candidates
    (6, {"n_topics": 11, "n_candidates": 3, "horizon": 20}),  # d not a multiple of 8: the tail of the sums
    (4, {"n_topics": 3, "horizon": 7}),  # d below 8: the short sum
    (9, {"n_topics": 128, "horizon": 5}),  # the longest row the kernels sum
    (16, {"preset": "hard"}),
    (16, {"preset": "easy", "campaign": 3}),  # one fixed campaign: broadcast pool terms
    (64, {"fatigue_strength": 0.5, "horizon": 30}),  # fatigue: the compiled requests, the truth per step
    (12, {"seed": 4, "n_users": 500, "horizon": 15}),  # another world
])
def test_vector_env_compiled_equals_numpy(monkeypatch, num_envs, kw):
    got, used = _episode(monkeypatch, "1", num_envs=num_envs, **kw)
    want, used_numpy = _episode(monkeypatch, "0", num_envs=num_envs, **kw)
    assert used and not used_numpy
    _assert_same(got, want)


@needs_numba
@pytest.mark.parametrize("kw", [{}, {"reward": "revenue", "horizon": 700}, {"n_candidates": 4, "n_topics": 9}])
def test_single_env_compiled_equals_numpy(monkeypatch, kw):
    """The single env (``gym.make``, its wrappers), whose blocks hold thousands of steps of one slot."""
    got, used = _episode(monkeypatch, "1", num_envs=None, steps=300, **kw)
    want, _ = _episode(monkeypatch, "0", num_envs=None, steps=300, **kw)
    assert used
    _assert_same(got, want)


@needs_numba
@pytest.mark.parametrize("env_id", ["adsim/SlateSelection-v0", "adsim/AdAuction-v0"])
def test_subclassed_cores_compiled_equal_numpy(monkeypatch, env_id):
    """The slate and auction cores compute their own truth from the compiled block's logits."""
    got, used = _episode(monkeypatch, "1", env_id=env_id, num_envs=24, horizon=10)
    want, _ = _episode(monkeypatch, "0", env_id=env_id, num_envs=24, horizon=10)
    assert used
    _assert_same(got, want)


@needs_numba
def test_stacked_worlds_compiled_equal_numpy(monkeypatch):
    got, used = _episode(monkeypatch, "1", num_envs=3 * 8, world_seeds=[0, 1, 2], horizon=8, seed=[4, 5, 6])
    want, _ = _episode(monkeypatch, "0", num_envs=3 * 8, world_seeds=[0, 1, 2], horizon=8, seed=[4, 5, 6])
    assert used
    _assert_same(got, want)


@needs_numba
@pytest.mark.parametrize("N, T, seed", [(4096, 1, 0), (300, 3, 1), (1, 17, 2), (50, 2, 3)])
def test_compiled_block_equals_requests_and_truth(N, T, seed):
    """One block, field by field: ``compiled_block`` and ``pool_truth`` against the uniforms,
    ``RequestGenerator.requests`` and ``SelectionCore._block_truth_of`` they replace, at episode 2
    and step 40 (every stream position term non-zero), with random campaigns."""
    from adsim import rng as crng

    core = SelectionCore(make_config("default", reward="revenue"), N)
    core.seed(seed)
    core.episode, gen = 2, core.generator
    core.campaign = np.random.default_rng(seed).integers(0, core.world.config.n_campaigns, size=N)
    core.value = core.world.campaign_value[core.campaign]
    steps = 40 + np.arange(T)
    u = np.moveaxis(crng.uniforms(core.keys, np.full(N, 2), np.broadcast_to(steps, (N, T)), gen.n_draws,
                                  streams_first=True), 0, -1)
    want = gen.requests(u, core.campaign, np.broadcast_to(2 * core.config.horizon + steps, (N, T)), 40)
    got, _ = gen.compiled_block(core.keys, 2, 40, T, core.campaign, core.beta0)
    for name, a, b in zip(want._fields, got, want):
        _assert_same(np.asarray(a), np.asarray(b), name)
    core._fill_compiled(40, T)
    _assert_same(core._block_truth, core._block_truth_of(np.ascontiguousarray(np.moveaxis(want.logits, -1, 0)),
                                                         want.position, want.p_conv))


@needs_numba
@pytest.mark.parametrize("d", [1, 2, 7, 8, 9, 16, 17, 31, 64, 100, 128])
def test_the_kernels_sum_as_this_numpy(d):
    """The probe finds NumPy's row sum and einsum order reproduced for every length the kernels sum."""
    assert compiled.orders_match(d)


def test_no_kernels_past_the_pairwise_block_or_with_drift():
    """Rows longer than NumPy's pairwise block (its sum recurses) and the drifting world's
    time-dependent multipliers take the NumPy path; so does personalised mode."""
    assert not compiled.orders_match(129)
    assert SelectionCore(make_config("default", n_topics=129), 2).generator.kernels is None
    assert SelectionCore(make_config("drifting"), 2).generator.kernels is None
    assert SelectionCore(make_config("personalized"), 2).generator.kernels is None


def test_adsim_numba_0_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("ADSIM_NUMBA", "0")
    assert not compiled.enabled() and compiled.kernels() is None
    assert SelectionCore(make_config("default"), 4).generator.kernels is None


def test_without_numba_the_numpy_path_runs(monkeypatch):
    """numba not importable: no kernels, and the env runs the NumPy path — the numbers the
    compiled path gives where numba is present."""
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.setattr(compiled, "_NUMBA", None)  # tried again
    monkeypatch.setattr(compiled, "_KERNELS", None)
    monkeypatch.setattr(compiled, "_ORDERS", {})
    assert compiled.kernels() is None and not compiled.orders_match(16)
    got, used = _episode(monkeypatch, "1", num_envs=16, horizon=10)
    assert not used
    monkeypatch.undo()
    if compiled.kernels() is not None:
        want, used = _episode(monkeypatch, "1", num_envs=16, horizon=10)
        assert used
        _assert_same(got, want)


def test_a_compiled_env_copies_and_its_core_pickles():
    """An env that computes compiled is deep-copied, and its core pickled, as before (with whether
    it computes compiled, not the kernels' module); the copies go on with the original's numbers."""
    import copy
    import pickle

    env = gym.make_vec(CS, num_envs=8, vectorization_mode="vector_entry_point", horizon=6)
    env.reset(seed=1)
    twin, core = copy.deepcopy(env), pickle.loads(pickle.dumps(env.unwrapped.core))
    assert (twin.unwrapped.core.generator.kernels is None) == (env.unwrapped.core.generator.kernels is None)
    assert (core.generator.kernels is None) == (env.unwrapped.core.generator.kernels is None)
    actions = np.arange(8) % env.unwrapped.n_candidates
    for t in range(9):  # past the autoreset
        obs, reward, *_ = want = env.step(actions)
        _assert_same(twin.step(actions), want)
        if t < 5:  # the core alone, before the horizon
            _assert_same((core.step(actions).reward, core.observation()), (reward, obs))


def test_importing_adsim_does_not_import_numba():
    probe = "import sys, adsim, adsim.envs.creative_selection; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
