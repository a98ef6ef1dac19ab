"""The generator in the loop: a directory written by ``adsim train-generator`` as the candidate
source of a personalised CreativeSelection env, on the template scenario's world.

A generated scenario differs from the template-candidate scenario of the same seed in one thing
only, who writes the K candidates of each request: the world (``WorldConfig.seed`` = scenario
seed), the request streams and β0 — calibrated so that a uniformly random choice among the
*template* sampler's candidates has the target CTR (:func:`adsim.requests.scenario_intercept`) —
are the template scenario's. So the true CTR of what a policy shows there is comparable, seed by
seed, with what it shows among template candidates; calibrating β0 on the generated candidates
instead would move every click probability and hide the generator's effect.

The weights load with ``torch.load(weights_only=True)`` (:meth:`CreativeTransformer.load`): a
generator directory is data, never code. :func:`generator_identity` names the generator (a hash of
its weights and its architecture, and how it was trained) in a study's fingerprint and provenance.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from adsim.config import EnvConfig, WorldConfig

DEFAULT_DIR = "models/generator"
"""Where set-up (``make install``) writes the default generator; ``"default"`` names it."""
DEFAULT = "default"
STORE = "warm"
"""The subdirectory of a generator directory where its warmed creatives are stored, one file per world
(:class:`~adsim.generator.source.GeneratorSource`'s ``store``): a cache, safe to delete."""
TRAINING_KEYS = ("preset", "fields", "train", "finetune", "reward_model", "pretrained_from")
"""Keys of a generator directory's ``config.json`` that say how it was trained (its provenance)."""


def generator_dir(value: str | Path) -> Path:
    """The directory a ``generator`` value names: ``"default"`` is :data:`DEFAULT_DIR` (relative to
    the working directory, as ``adsim generate --model``'s default), anything else a path."""
    if not isinstance(value, (str, Path)) or not str(value):
        raise TypeError(f"generator must be 'default' or a directory path, got {type(value).__name__} {value!r}")
    return Path(DEFAULT_DIR if str(value) == DEFAULT else value)


def check_generator(value: str | Path, n_interest_tags: int, where: str = "generator") -> Path:
    """The absolute directory of a usable generator for a world with ``n_interest_tags`` tags;
    ``ValueError`` naming ``where`` if it is missing or was built for another world shape."""
    path = generator_dir(value)
    if not (path / "model.pt").is_file() or not (path / "model.json").is_file():
        how = ("run `make install` (set-up trains the default generator there) or "
               f"`adsim train-generator --out {DEFAULT_DIR}`" if str(value) == DEFAULT
               else f"run `adsim train-generator --out {path}`, or use generator = 'default'")
        raise ValueError(f"{where} == {str(value)!r}: no generator in {str(path)!r} (expected model.pt and "
                         f"model.json, written by `adsim train-generator`); {how}")
    try:
        arch = json.loads((path / "model.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{where} == {str(value)!r}: {path / 'model.json'} is not readable JSON ({err})") from None
    tags = arch.get("n_interest_tags") if isinstance(arch, dict) else None
    if tags != n_interest_tags:
        raise ValueError(f"{where} == {str(value)!r}: the generator in {str(path)!r} reads {tags} interest tags, "
                         f"the scenario's world has n_interest_tags == {n_interest_tags}; train one for this world "
                         f"(`adsim train-generator --out DIR --set n_interest_tags={n_interest_tags}`)")
    return path.resolve()


@functools.lru_cache(maxsize=16)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(directory: str | Path) -> str:
    """SHA-256 of a generator directory's ``model.pt`` (computed once per file version and process)."""
    path = Path(directory) / "model.pt"
    st = path.stat()
    return _weights_sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


def generator_identity(directory: str | Path, training: bool = False) -> dict[str, Any]:
    """What names a generator: its architecture (``model.json``) and the SHA-256 of its weights;
    with ``training``, also how it was trained (``config.json``'s :data:`TRAINING_KEYS`, where present)."""
    directory = Path(directory)
    doc: dict[str, Any] = {"weights_sha256": weights_sha256(directory),
                           "model": json.loads((directory / "model.json").read_text())}
    if training:
        meta = directory / "config.json"
        record = json.loads(meta.read_text()) if meta.is_file() else {}
        doc["training"] = {k: record[k] for k in TRAINING_KEYS if k in record}
    return doc


@functools.lru_cache(maxsize=16)
def _source(directory: str, sha: str, world_seed: int, n_interest_tags: int):
    from adsim.generator.generate import CreativeGenerator
    from adsim.generator.source import GeneratorSource

    return GeneratorSource(CreativeGenerator.load(directory), n_interest_tags, seed=world_seed,
                           store=Path(directory) / STORE)


def generator_source(directory: str | Path, world: WorldConfig):
    """The :class:`~adsim.generator.source.GeneratorSource` of the generator in ``directory`` for
    ``world``: its cached creatives' uniforms are seeded by the world seed (scenario seeds draw
    independent creatives). One per (generator version, world) and process: its conditioning cache
    is a pure function of (seed, conditioning), so envs of the same world share it, warm; its warmed
    creatives are stored in the generator's :data:`STORE` folder, so other processes load them."""
    path = check_generator(directory, world.n_interest_tags)
    return _source(str(path), weights_sha256(path), int(world.seed), int(world.n_interest_tags))


def generated_core_kwargs(config: EnvConfig, generator: str | Path) -> dict[str, Any]:
    """The :class:`~adsim.selection.SelectionCore` keywords of a generated scenario of ``config``:
    the generator's candidate source, and the template sampler's β0 of the same world."""
    from adsim.requests import scenario_intercept

    if config.mode != "personalized":
        raise ValueError(f"generator == {str(generator)!r} needs mode == 'personalized' (candidates written for "
                         f"each request), got mode == {config.mode!r}")
    return {"candidate_source": generator_source(generator, config.world),
            "beta0": scenario_intercept(config.world, config.n_candidates, config.mode)}


def warm_generator(directory: str | Path, config: EnvConfig) -> int:
    """Warm the candidate source of the generated scenario ``config`` (in this process, and in the
    generator's store for every other): decode, or load, every conditioning of its world; return how
    many there are. A benchmark's workers call it once per world before its runs
    (``experiments.runner``), so no two of them decode the same world."""
    from adsim.world import cached_world

    source = generated_core_kwargs(config, directory)["candidate_source"]
    source.prepare(cached_world(config.world), config.n_candidates)
    return source.cached


__all__ = ["DEFAULT", "DEFAULT_DIR", "STORE", "check_generator", "generated_core_kwargs", "generator_dir",
           "generator_identity", "generator_source", "warm_generator", "weights_sha256"]
