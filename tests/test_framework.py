"""The experiment framework as a researcher uses it: a policy of their own by import path (in
spawned workers and on Ray), the one config schema with command-line overrides, everything checked
before anything runs, incremental results that survive SIGKILL and resume bit for bit, no orphaned
workers after SIGINT/SIGTERM, paired statistics, truth withheld from non-reference policies.
Tiny sizes throughout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.cli import EXIT_INTERRUPTED, EXIT_RUN_FAILED, main
from experiments.runner.report import TIMING_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

HELPERS = '''
import os
import time

import numpy as np

from agents.base import Policy, RandomPolicy


class Slow(RandomPolicy):
    """Random, but each choice takes ``delay`` seconds (so a run can be interrupted midway)."""

    def __init__(self, delay: float = 0.05):
        self.delay = delay

    def select(self, obs, info=None):
        time.sleep(self.delay)
        return super().select(obs, info)


class SlowLogger(RandomPolicy):
    """Random, but each logged step takes ``delay`` seconds (so an OPE study can be interrupted midway)."""

    def __init__(self, delay: float = 0.05):
        self.delay = delay

    def probabilities(self, obs, info=None):
        time.sleep(self.delay)
        return super().probabilities(obs, info)


class Peeker(Policy):
    """A learning policy that (wrongly) reads the truth."""

    def probabilities(self, obs, info=None):
        best = np.argmax(info["click_probs"], axis=1)
        return np.eye(self.n_actions)[best]


class PidWriter(Slow):
    """Slow, and notes the pid of every process it runs in (to check none outlives the run)."""

    def reset(self, *args, **kwargs):
        Path = __import__("pathlib").Path
        folder = Path(os.environ["PID_DIR"])
        (folder / str(os.getpid())).touch()
        super().reset(*args, **kwargs)
'''


def readme_block(marker: str) -> str:
    """The README's fenced code block whose first line is ``marker`` (the documented example)."""
    match = re.search(r"```\w*\n(" + re.escape(marker) + r"\n.*?)```", README, re.S)
    assert match, f"README has no code block starting with {marker!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def user_code(tmp_path_factory):
    """The README's example policy module and study config, plus test helpers, in a fresh folder."""
    root = tmp_path_factory.mktemp("user")
    (root / "mypolicies.py").write_text(readme_block("# mypolicies.py"))
    (root / "myhelpers.py").write_text(HELPERS)
    (root / "mystudy.toml").write_text(readme_block("# mystudy.toml"))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


SMALL = [f"scenarios.{s}.{k}={v}" for s in ("pool", "session") for k, v in (("n_users", 200), ("n_products", 40))]
TINY = ["--seeds", "2", "--steps", "8", "--set", "batch_size=4", *[a for x in SMALL for a in ("--set", x)],
        "--no-progress"]


def _metrics(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "metrics.csv").drop(columns=list(TIMING_COLUMNS))


@pytest.fixture(scope="module")
def serial(user_code, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "serial"
    assert main(["bench", "--config", str(user_code / "mystudy.toml"), "--out", str(out), "--jobs", "1", *TINY]) == 0
    return out


def test_the_readme_example_runs_with_paired_statistics(serial):
    summary = pd.read_csv(serial / "summary.csv")
    assert set(summary["policy"]) == {"random", "ucb1", "softmax"}
    assert set(summary["scenario"]) == {"pool", "session"}
    assert (summary["reference"] == "ucb1").all()
    metrics = pd.read_csv(serial / "metrics.csv")
    final = metrics[metrics["step"] == 8]
    for _, row in summary.iterrows():  # the paired difference is the mean of per-seed differences
        mine = final[(final.scenario == row.scenario) & (final.policy == row.policy)].set_index("seed")["cum_regret"]
        ref = final[(final.scenario == row.scenario) & (final.policy == "ucb1")].set_index("seed")["cum_regret"]
        assert np.isclose(row["regret_diff"], (mine - ref).mean())
        assert row["regret_diff_low"] <= row["regret_diff"] <= row["regret_diff_high"]
        assert 0 <= row["regret_low"] <= row["regret_mean"] <= row["regret_high"]  # bands in the valid range
        assert 0 <= row["ctr_low"] <= row["ctr_high"] <= 1
    session = summary[summary.scenario == "session"]
    assert session["episode_return_mean"].gt(0).all()  # AdSession sessions end and are counted
    for name in ("regret", "regret_loglog", "paired", "ctr"):
        assert (serial / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (serial / f"{name}.svg").read_bytes()[:2000]
    assert "Δ regret vs ref." in (serial / "summary.md").read_text()


def test_a_user_policy_works_in_spawned_workers(user_code, serial, tmp_path):
    out = tmp_path / "pool"
    assert main(["bench", "--config", str(user_code / "mystudy.toml"), "--out", str(out), "--jobs", "2", *TINY]) == 0
    pd.testing.assert_frame_equal(_metrics(serial), _metrics(out), check_exact=True)


@pytest.mark.ray
def test_a_user_policy_works_on_ray(user_code, serial, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "ray"
    assert main(["bench", "--config", str(user_code / "mystudy.toml"), "--out", str(out), "--jobs", "2",
                 "--backend", "ray", *TINY]) == 0
    pd.testing.assert_frame_equal(_metrics(serial), _metrics(out), check_exact=True)


def _finished(out: Path) -> int:
    """Finished runs in ``out/runs``: not the hidden temporary file of a write in progress (a kill
    can leave one behind; the runner never reads it)."""
    return sum(not p.name.startswith(".") for p in (out / "runs").glob("*.npz"))


@pytest.mark.ray
def test_an_ope_study_gives_the_same_estimates_serially_in_a_pool_and_on_ray(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    tiny = ["--seeds", "2", "--set", "ope.sizes=[60]", "--set", 'ope.targets=["oracle"]', "--set",
            "scenarios.default.n_users=200", "--set", "scenarios.default.n_products=40", "--no-progress"]
    frames = []
    for name, extra in (("serial", ["--jobs", "1"]), ("pool", ["--jobs", "2"]),
                        ("ray", ["--jobs", "2", "--backend", "ray"])):
        assert main(["ope-study", "--out", str(tmp_path / name), *tiny, *extra]) == 0
        frames.append(pd.read_csv(tmp_path / name / "estimates.csv.gz"))
    assert len(frames[0]) == 2 * 2 * 7  # 2 seeds × 2 logging policies × 7 estimators (one target)
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other, check_exact=True)


def test_resume_after_sigkill_equals_an_uninterrupted_run(user_code, tmp_path):
    cfg = tmp_path / "slow.toml"
    cfg.write_text('seeds = [0, 1, 2]\nsteps = 6\nbatch_size = 4\n[scenarios.pool]\npreset = "easy"\n'
                   'n_users = 200\nn_products = 40\n[policies.random]\n[policies.slow]\n'
                   'policy = "myhelpers:Slow"\ndelay = 0.1\n')
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["bench", "--config", str(cfg), "--out", str(whole), "--jobs", "1", "--no-stack",
                 "--no-progress"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_code), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "bench", "--config", str(cfg), "--out", str(cut),
                             "--jobs", "1", "--no-stack", "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _finished(cut) < 4 and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    kept = _finished(cut)
    assert 4 <= kept < 6, kept  # interrupted midway, every finished run intact
    assert not (cut / "metrics.csv").exists()
    assert main(["bench", "--config", str(cfg), "--out", str(cut), "--jobs", "1", "--no-stack", "--no-progress"]) == 2
    assert main(["bench", "--config", str(cfg), "--out", str(cut), "--jobs", "1", "--no-stack", "--no-progress",
                 "--resume"]) == 0
    assert json.loads((cut / "config.json").read_text())["run"]["resumed_runs"] == kept
    pd.testing.assert_frame_equal(_metrics(whole), _metrics(cut), check_exact=True)
    assert (whole / "summary.md").read_text().split("|")[:3] == (cut / "summary.md").read_text().split("|")[:3]


def test_ope_study_resume_after_sigkill_equals_an_uninterrupted_run(user_code, tmp_path):
    cfg = tmp_path / "ope.toml"
    cfg.write_text('seeds = [0, 1, 2]\n[scenarios.s]\nn_users = 200\nn_products = 40\n'
                   '[ope]\nlogging = ["slow"]\ntargets = ["random", "oracle"]\nsizes = [60, 120]\n'
                   '[policies.random]\n[policies.oracle]\n[policies.slow]\npolicy = "myhelpers:SlowLogger"\n'
                   'delay = 0.4\n')
    flags = ["--jobs", "1", "--no-stack", "--no-progress"]  # --no-stack: one log per unit
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["ope-study", "--config", str(cfg), "--out", str(whole), *flags]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_code), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "ope-study", "--config", str(cfg), "--out",
                             str(cut), *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _finished(cut) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    kept = _finished(cut)
    assert 3 <= kept < 6, kept  # interrupted midway, every finished log intact
    assert not (cut / "summary.csv").exists()
    assert main(["ope-study", "--config", str(cfg), "--out", str(cut), *flags]) == 2
    assert main(["ope-study", "--config", str(cfg), "--out", str(cut), *flags, "--resume"]) == 0
    assert json.loads((cut / "config.json").read_text())["run"]["resumed_runs"] == kept
    for name in ("summary.csv", "summary.md"):
        assert (whole / name).read_bytes() == (cut / name).read_bytes(), name
    import gzip

    assert gzip.decompress((whole / "estimates.csv.gz").read_bytes()) == \
        gzip.decompress((cut / "estimates.csv.gz").read_bytes())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_no_worker_outlives_an_interrupted_run(user_code, tmp_path, sig):
    cfg = tmp_path / "slow.toml"
    cfg.write_text('seeds = [0, 1, 2, 3]\nsteps = 40\nbatch_size = 4\n[scenarios.pool]\npreset = "easy"\n'
                   'n_users = 200\nn_products = 40\n[policies.slow]\npolicy = "myhelpers:PidWriter"\ndelay = 0.1\n')
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PID_DIR": str(pids), "PYTHONPATH": os.pathsep.join([str(user_code), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "bench", "--config", str(cfg), "--out",
                             str(tmp_path / "out"), "--jobs", "2", "--no-stack", "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2 and proc.pid not in workers
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    if sig != signal.SIGKILL:
        assert code == EXIT_INTERRUPTED and "interrupted" in proc.stderr.read()
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


# ----------------------------------------------------------------------------- checked before running
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text('seeds = [0]\nsteps = 4\nbatch_size = 4\n' + text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('[scenarios.s]\npreset = "easy"\nreward = "revenue"\n[policies.thompson]\n',
     r"policies\.thompson cannot learn from scenarios\.s's reward 'revenue'"),
    ('[scenarios.s]\npreset = "personalized"\nctr_model = "CFGPATH"\n[policies.random]\n',
     r"scenarios\.s\.ctr_model == '.*' is not a CTR model of this world"),
    ('[scenarios.s]\n[policies.mine]\npolicy = "nopkg.nomod:Mine"\n',
     r"policies\.mine: policy 'nopkg\.nomod:Mine': cannot import module 'nopkg\.nomod'"),
    ('[scenarios.s]\n[policies.mine]\npolicy = "myhelpers:Slow"\ndelay = 1\nspeed = 2\n',
     r"unknown hyperparameter 'speed' for policy 'myhelpers:Slow'"),
    ('[scenarios.s]\n[policies.ppo]\nmodel_path = "nowhere.zip"\n', r"model_path == 'nowhere\.zip': no such file"),
    ('nme = "x"\n[scenarios.s]\n[policies.random]\n', r"unknown config key 'nme'; did you mean 'name'"),
])
def test_bad_studies_exit_2_before_anything_runs(user_code, tmp_path, capsys, text, message):
    cfg = _write(tmp_path, text.replace("CFGPATH", str(tmp_path / "c.toml")))
    out = tmp_path / "out"
    assert main(["bench", "--config", str(cfg), "--out", str(out), "--jobs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    assert not out.exists()


def test_a_runtime_failure_exits_3_and_names_the_run(user_code, tmp_path, capsys):
    cfg = _write(tmp_path, '[scenarios.s]\npreset = "easy"\nn_users = 200\n[policies.peek]\n'
                           'policy = "myhelpers:Peeker"\n')
    assert main(["bench", "--config", str(cfg), "--out", str(tmp_path / "o"), "--jobs", "1", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "run s/peek/seeds[0] failed" in err or "run s/peek/seed0 failed" in err
    assert "policy 'peek' read the env's info, which holds the ground truth" in err
    assert EXIT_RUN_FAILED == 3


def test_out_folders_are_protected(tmp_path, capsys):
    smoke = str(ROOT / "experiments" / "configs" / "smoke.toml")
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["bench", "--config", smoke, "--out", str(out), "--jobs", "1", "--seeds", "1", "--steps", "3", "--no-progress"]
    assert main(args) == 2
    assert "made by something other than this runner" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite replaces only the runner's own files
    assert main([*args[:-3], "--steps", "4", "--no-progress"]) == 2  # another config
    assert "made by another config" in capsys.readouterr().err
    os.chmod(out, 0o500)
    try:
        if not os.access(out, os.W_OK):  # (root ignores permissions)
            assert main([*args, "--overwrite"]) == 2
            assert "is not writable" in capsys.readouterr().err
    finally:
        os.chmod(out, 0o700)


def test_set_seeds_steps_and_dry_run(capsys, tmp_path):
    smoke = str(ROOT / "experiments" / "configs" / "smoke.toml")
    out = tmp_path / "never"
    assert main(["bench", "--config", smoke, "--out", str(out), "--dry-run", "--seeds", "2", "--steps", "5",
                 "--set", "scenarios.pool.batch_size=8", "--set", 'name="renamed"']) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["config"] == "renamed" and plan["runs"] == 2 * 2 * 2
    assert plan["impressions"] == 2 * 2 * (5 * 16 + 5 * 8) and plan["estimated_seconds"] >= 0
    assert not out.exists()
    assert main(["bench", "--config", smoke, "--out", str(out), "--set", "steps"]) == 2
    assert "expected dotted.key=value" in capsys.readouterr().err
    assert main(["bench", "--config", smoke, "--out", str(out), "--set", "policies.random.epsilon=0.1"]) == 2
    assert "unknown hyperparameter 'epsilon' for policy 'random'" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and re.match(r"adsim \d+\.\d+", capsys.readouterr().out)


def test_plot_works_on_the_committed_main_job_alone(tmp_path, capsys):
    """What a fresh clone has of results/default (git-tracked files only) is enough for `adsim plot`."""
    tracked = subprocess.run(["git", "ls-files", "results/default"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert {"results/default/config.json", "results/default/metrics.csv.gz", "results/default/summary.csv"} <= set(tracked)
    for name in tracked:
        (tmp_path / Path(name).name).write_bytes((ROOT / name).read_bytes())
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "paired.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((tmp_path / "config.json").read_text())
    assert str(ROOT) not in json.dumps(meta) and "/home/" not in json.dumps(meta)  # no machine paths
