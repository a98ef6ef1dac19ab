"""Tests of the Transformer creative generator (tiny sizes: the whole file runs in well under 60 s)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from adsim import make_config
from adsim.config import WorldConfig
from adsim.selection import SelectionCore
from adsim.world import cached_world
from adsim.creative.lexicon import GOALS, LEXICON, ROLES
from adsim.creative.parser import HeadlineParser
from adsim.creative.sampler import CREATIVE_SLOTS, DRAWS_PER_CREATIVE
from adsim.running_ctr import Request
from adsim.generator.conditioning import Conditioning, build_corpus, request_values, sample_requests, teacher, to_tokens
from adsim.generator.decode import DecodeSpec, beam_search, decode, grammar_masks, next_state, tokens_to_creatives
from adsim.generator.evaluate import diversity, oracle_creatives, true_ctr, well_formedness
from adsim.generator.finetune import FinetuneConfig, finetune, sequence_logp
from adsim.generator.generate import CreativeGenerator
from adsim.generator.model import MAX_DECODE, CreativeTransformer, GeneratorConfig
from adsim.generator.source import GeneratorSource
from adsim.generator.tokenizer import Tokenizer, Vocab
from adsim.generator.train import TrainConfig, creatives_to_tokens, pretrain

torch.set_num_threads(1)
SMALL = dict(n_users=400, n_products=60, n_campaigns=6, n_interest_tags=4)
TINY = GeneratorConfig(n_interest_tags=4, d_model=32, n_heads=2, n_enc_layers=1, n_dec_layers=1, d_ff=64)


@pytest.fixture(scope="module")
def world():
    return cached_world(WorldConfig(**SMALL))


@pytest.fixture(scope="module")
def trained(world):
    corpus = build_corpus(world, 8000, seed=0)
    model, curve = pretrain(corpus, TINY, TrainConfig(corpus_size=8000, epochs=6, batch_size=64, lr=5e-3),
                            progress=False)
    return model, curve


@pytest.fixture(scope="module")
def requests(world):
    req = sample_requests(world, 200, np.random.default_rng(3))
    return req, request_values(world, req)


# ----------------------------------------------------------------------------- tokenizer
@pytest.mark.parametrize("language,texts", [
    ("en", ["wireless headphones 20% off ends tonight", "editor's pick cookbook for students",
            "shirt linen free 20% off", "off off 20%", ""]),
    ("zh", ["无线耳机八折优惠今晚截止", "编辑推荐家常菜谱学生专属", "耳机无线包邮", "折八", ""]),
])
def test_tokenizer_round_trip(language, texts):
    tok = Tokenizer(language)
    for text in texts:
        assert tok.decode(tok.encode(text)) == text
    # phrases come out as single phrase tokens, shared across languages
    ids = tok.encode(LEXICON.texts[language][0] + ("" if language == "zh" else " ") + LEXICON.texts[language][32])
    assert ids == [tok.vocab.phrase_offset + 0, tok.vocab.phrase_offset + 32]


def test_tokenizer_every_phrase_and_pairs_parse_back():
    for language in ("en", "zh"):
        tok, parser = Tokenizer(language), HeadlineParser(language)
        for p in range(LEXICON.n_phrases):
            assert tok.encode(LEXICON.texts[language][p]) == [tok.vocab.phrase_offset + p]
        a, b = np.meshgrid(np.arange(LEXICON.n_phrases), np.arange(LEXICON.n_phrases))
        for x, y in zip(a.ravel()[::7], b.ravel()[::7]):
            assert parser.parse(tok.render_phrases([x, y])).phrases == (x, y)


@pytest.mark.parametrize("language,text,match", [
    ("en", "wireless  headphones", "single spaces"),
    ("en", "wireless earbuds", "'earbuds' is not a en lexicon unit"),
    ("zh", "无线耳麦", "'麦' is not a zh lexicon unit"),
])
def test_tokenizer_rejects_text_outside_the_lexicon(language, text, match):
    with pytest.raises(ValueError, match=match):
        Tokenizer(language).encode(text)


def test_tokenizer_bad_language():
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        Tokenizer("fr")


# ----------------------------------------------------------------------------- corpus and layout
def test_corpus_is_seeded_and_token_layout_round_trips(world):
    a, b = build_corpus(world, 500, seed=1), build_corpus(world, 500, seed=1)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.creatives, b.creatives)
    assert not np.array_equal(a.creatives, build_corpus(world, 500, seed=2).creatives)
    vocab = Vocab(4)
    back = tokens_to_creatives(creatives_to_tokens(a.creatives, vocab), vocab)
    assert np.array_equal(back, a.creatives)  # teacher slots are packed left already


# ----------------------------------------------------------------------------- training and decoding
def test_tiny_model_learns_well_formed_text(world, trained, requests):
    model, curve = trained
    assert curve["valid_loss"][-1] < curve["valid_loss"][0]
    req, values = requests
    cat = world.campaign_category[req["campaign"]]
    good = CreativeGenerator(model).candidates(values, 8, seed=0)
    untrained = CreativeGenerator(CreativeTransformer(TINY)).candidates(values, 8, seed=0)
    wf_good, wf_bad = well_formedness(good, cat), well_formedness(untrained, cat)
    assert wf_good["well_formed"] >= 0.8, wf_good
    assert wf_bad["well_formed"] < 0.3, wf_bad  # the check can fail: random weights do not pass
    assert diversity(good)["distinct_candidates"] > 0.9


def test_same_seed_same_candidates(trained, requests):
    model, _ = trained
    gen = CreativeGenerator(model)
    values = requests[1][:20]
    a, b = gen.candidates(values, 8, seed=5), gen.candidates(values, 8, seed=5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, gen.candidates(values, 8, seed=6))
    assert a.shape == (20, 8, CREATIVE_SLOTS)


@pytest.mark.parametrize("method", ["greedy", "sample", "top_k", "nucleus"])
def test_kv_cache_matches_uncached_decoder(trained, requests, method):
    model, _ = trained
    cond = torch.as_tensor(to_tokens(requests[1][:64], model.vocab))
    u = torch.as_tensor(np.random.default_rng(0).random((64, 9)), dtype=torch.float32)
    spec = DecodeSpec(method=method, top_k=5, top_p=0.8)
    cached = decode(model, cond, u, spec, use_cache=True)
    assert torch.equal(cached, decode(model, cond, u, spec, use_cache=False))


def _reference_decode(model, cond, u, spec):
    """Sampling written out from its definition: the whole prefix recomputed at every position
    (no KV cache, the memory repeated per sample), softmax over the whole vocabulary with the
    grammar mask, top-k / nucleus by a full sort, the token whose CDF interval holds u."""
    masks, n = grammar_masks(model.vocab), u.shape[0] // cond.shape[0]
    mem = [(k.repeat_interleave(n, 0), v.repeat_interleave(n, 0)) for k, v in model.encode(cond)]
    seq = torch.full((u.shape[0], 1), 1)  # <bos>
    state = torch.zeros(u.shape[0], dtype=torch.long)
    for t in range(u.shape[1]):
        logits = (model.decode_full(mem, seq)[:, -1] + masks[state]) / spec.temperature
        if spec.method == "top_k":
            logits = logits.masked_fill(logits < torch.topk(logits, spec.top_k).values[:, -1:], float("-inf"))
        p = torch.softmax(logits, -1)
        if spec.method == "nucleus":
            sp = torch.sort(p, descending=True).values
            keep = ((sp.cumsum(-1) - sp) < spec.top_p).sum(-1, keepdim=True)
            p = p * (p >= sp.gather(-1, keep - 1))
        cdf = p.cumsum(-1)
        tok = logits.argmax(-1) if spec.method == "greedy" else (cdf <= u[:, t : t + 1] * cdf[:, -1:]).sum(-1)
        seq = torch.cat([seq, tok[:, None]], 1)
        state = next_state(state, tok)
    return seq[:, 1:]


@pytest.mark.parametrize("method", ["greedy", "sample", "top_k", "nucleus"])
def test_batched_samples_of_a_conditioning_match_the_reference_decoder(trained, requests, method):
    # 4 samples per conditioning: the cached decoder attends to each conditioning's memory once for
    # its 4 samples and samples over the grammar's output columns only; the same tokens as the definition
    model, _ = trained
    cond = torch.as_tensor(to_tokens(requests[1][:48], model.vocab))
    u = torch.as_tensor(np.random.default_rng(2).random((48 * 4, MAX_DECODE)), dtype=torch.float32)
    spec = DecodeSpec(method=method, top_k=5, top_p=0.8)
    with torch.inference_mode():
        want = _reference_decode(model, cond, u, spec)
    got = decode(model, cond, u, spec, use_cache=True, repeat=4)
    assert torch.equal(got, want)
    assert torch.equal(decode(model, cond, u, spec, use_cache=False, repeat=4), want)
    if method != "greedy":  # the 4 samples of a conditioning differ (their uniforms do)
        assert (got.view(48, 4, -1) != got.view(48, 4, -1)[:, :1]).any(-1).any(-1).float().mean() > 0.5


def test_beam_search_returns_distinct_best_first(trained, requests):
    model, _ = trained
    cond = torch.as_tensor(to_tokens(requests[1][:5], model.vocab))
    toks, score = beam_search(model, cond, 4, 8)
    assert toks.shape == (5, 4, 9)
    assert torch.all(score[:, :-1] >= score[:, 1:])
    cre = tokens_to_creatives(toks.numpy(), model.vocab)
    assert diversity(cre)["distinct_candidates"] == 1.0
    with torch.no_grad():  # the beam scores are the sequences' log-probabilities (cache reordering is right)
        logp = sequence_logp(model, cond.repeat_interleave(4, 0), toks.reshape(20, 9), grammar_masks(model.vocab))
    assert torch.allclose(score.reshape(-1), logp, atol=1e-4)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,error,match", [
    (dict(goal="promo", category="fashion", tags=(1,)), ValueError, "unknown goal 'promo'; did you mean 'promotion'"),
    (dict(goal="promotion", category="fashion", tags=()), ValueError, "tags == \\(\\): give one or two"),
    (dict(goal="promotion", category="fashion", tags=(9,), n_interest_tags=4), ValueError, "tags\\[i\\] == 9"),
    (dict(goal="promotion", category="shoes", tags=(1,)), ValueError, "unknown category 'shoes'"),
    (dict(goal="promotion", category="fashion", tags=(1,), discount=0.15), ValueError, "discount == 0.15"),
    (dict(goal=3, category="fashion", tags=(1,)), TypeError, "goal must be a str"),
])
def test_bad_conditioning_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        Conditioning(**kwargs)


def test_bad_values_and_specs_raise():
    vocab = Vocab(4)
    v = Conditioning("brand", "books", (1, 2), n_interest_tags=4).values()
    v[0] = len(GOALS)
    with pytest.raises(ValueError, match="conditioning field 'goal' == 5"):
        to_tokens(v, vocab)
    with pytest.raises(ValueError, match="expected \\(..., 16\\)"):
        to_tokens(np.zeros(3, dtype=np.int64), vocab)
    with pytest.raises(ValueError, match="unknown method 'bam'"):
        DecodeSpec(method="bam")
    with pytest.raises(ValueError, match="top_p == 0"):
        DecodeSpec(top_p=0.0)


# ----------------------------------------------------------------------------- integration
def test_generator_source_in_both_env_modes(world, trained):
    model, _ = trained
    for mode in ("pool", "personalized"):
        cfg = make_config(mode=mode, horizon=20, **SMALL)
        src = GeneratorSource(CreativeGenerator(model), 4, cache_size=64)
        core = SelectionCore(cfg, 4, candidate_source=src)
        core.seed(range(4))
        core.start_episode()
        first = core.candidates.copy()
        assert first.shape == (4, cfg.n_candidates, CREATIVE_SLOTS)
        cat = world.campaign_category[core.campaign]
        assert well_formedness(first, cat)["on_product"] >= 0.5  # tiny model; quality is tested above
        # common random numbers: a fresh core (fresh cache) on the same seeds serves the same candidates
        core2 = SelectionCore(cfg, 4, candidate_source=GeneratorSource(CreativeGenerator(model), 4, cache_size=64))
        core2.seed(range(4))
        core2.start_episode()
        assert np.array_equal(first, core2.candidates)
    assert src.hits > 0  # the personalised cache was used


def test_cached_candidates_do_not_depend_on_cache_state(world, trained, requests):
    model, _ = trained
    req, _ = requests
    c = req["campaign"][:30]
    uf = world.user_features[req["user"][:30]]
    u = np.random.default_rng(1).random((30, 8, DRAWS_PER_CREATIVE))
    goal, cat = world.campaign_goal[c], world.campaign_category[c]
    warm = GeneratorSource(CreativeGenerator(model), 4, cache_size=8)  # tiny cache: evictions happen
    warm.candidates(u[10:], goal[10:], cat[10:], uf[10:])
    a = warm.candidates(u, goal, cat, uf)
    b = GeneratorSource(CreativeGenerator(model), 4, cache_size=1000).candidates(u, goal, cat, uf)
    assert np.array_equal(a, b)


def test_warmed_source_serves_the_same_candidates_as_one_filled_on_demand(trained):
    # the core's hook decodes every conditioning of the world (users' profiles × campaigns' goal and
    # category) when the core is built; every request is then a hit, and the candidates are exactly
    # those of a source that decodes each conditioning when a request first needs it, or of a cache
    # too small for the world (no warm-up, evictions)
    model, _ = trained
    gen = CreativeGenerator(model)
    cfg = make_config(mode="personalized", horizon=12, **dict(SMALL, n_users=150, n_campaigns=3))
    sources = {"warm": GeneratorSource(gen, 4), "on_demand": GeneratorSource(gen, 4, warm_up=False),
               "small": GeneratorSource(gen, 4, cache_size=50)}
    seen = {}
    for name, src in sources.items():
        core = SelectionCore(cfg, 6, candidate_source=src)
        core.seed(range(6))
        core.start_episode()
        steps = [core.candidates.copy()]
        for _ in range(cfg.horizon - 1):
            core.step(np.zeros(6, dtype=np.int64))
            steps.append(core.candidates.copy())
        seen[name] = (np.stack(steps), core.beta0)
    n_world = len(sources["warm"].world_conditionings(core.world))
    # at most users × campaigns; users sharing a profile and campaigns sharing goal and category coincide
    assert 150 < n_world <= 150 * 3
    assert sources["warm"].cached == n_world and sources["warm"].misses == 0 and sources["warm"].hits > 12 * 6
    assert sources["on_demand"].misses > 0 and sources["small"].misses > 0  # neither was warmed
    for name in ("on_demand", "small"):
        assert np.array_equal(seen[name][0], seen["warm"][0])
        assert seen[name][1] == seen["warm"][1]  # β0 calibrated on the same candidates
    with pytest.raises(TypeError, match="warm_up must be a bool"):
        GeneratorSource(gen, 4, warm_up=1)


def test_a_store_shares_a_warmed_world_across_sources_and_rejects_what_is_not_it(trained, tmp_path, monkeypatch):
    # a source with a store saves the world's warmed creatives; another source (another process in a
    # benchmark) loads them instead of decoding, exactly; another seed or world is another file, and a
    # damaged file is decoded again and replaced
    model, _ = trained
    cfg = make_config(mode="personalized", **dict(SMALL, n_users=150, n_campaigns=3))
    world = cached_world(cfg.world)
    store = tmp_path / "warm"
    first = GeneratorSource(CreativeGenerator(model), 4, store=store)
    first.prepare(world, 4)
    files = list(store.glob("*.npz"))
    assert len(files) == 1 and first.cached == len(first.world_conditionings(world))
    second = GeneratorSource(CreativeGenerator(model), 4, store=store)
    monkeypatch.setattr(second, "_decode", lambda *a: pytest.fail("decoded although the world was stored"))
    second.prepare(world, 4)
    assert np.array_equal(second._keys, first._keys) and np.array_equal(second._table, first._table)
    monkeypatch.undo()
    GeneratorSource(CreativeGenerator(model), 4, store=store, seed=1).prepare(world, 4)  # other uniforms
    GeneratorSource(CreativeGenerator(model), 4, store=store).prepare(cached_world(dataclasses.replace(cfg.world, seed=5)), 4)
    assert len(list(store.glob("*.npz"))) == 3
    files[0].write_bytes(b"not a stored world")
    third = GeneratorSource(CreativeGenerator(model), 4, store=store)
    third.prepare(world, 4)
    assert np.array_equal(third._table, first._table)
    with np.load(files[0], allow_pickle=False) as f:  # replaced by the decoded creatives
        assert np.array_equal(f["creatives"], first._table)
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with pytest.warns(UserWarning, match="could not save the warmed creatives"):
        fourth = GeneratorSource(CreativeGenerator(model), 4, store=blocked / "warm")
        fourth.prepare(world, 4)
    assert np.array_equal(fourth._table, first._table)
    with pytest.raises(TypeError, match="store must be a directory path"):
        GeneratorSource(CreativeGenerator(model), 4, store=3)


def test_perf_env_throughput_reports_rate_build_and_hits(trained):
    from experiments.perf.generator import ENV_TARGET, env_throughput

    cfg = make_config(mode="personalized", horizon=50, **dict(SMALL, n_users=150, n_campaigns=3))
    out = env_throughput(cfg, CreativeGenerator(trained[0]), N=16, quick=True)
    assert out["N"] == 16 and out["target_impressions_per_s"] == ENV_TARGET == 50_000
    assert out["impressions_per_s"]["median"] > 0 and out["impressions_per_s"]["repeats"] == 3
    assert out["cache_hit_rate"] == 1.0 and out["requests_served_timed"] > 0  # warmed: every request a hit
    assert out["warm_up"]["sequences_decoded"] == out["warm_up"]["conditionings_decoded"] * 2 * cfg.n_candidates > 0
    assert out["core_build"]["cpu_s"] > 0


# ----------------------------------------------------------------------------- evaluation and fine-tuning
def test_oracle_creative_beats_every_template_candidate(world, requests):
    req, _ = requests
    beta0 = -4.0
    c = req["campaign"]
    tpl = teacher(world, 4).candidates(np.random.default_rng(0).random((len(c), 16, 9)), world.campaign_goal[c],
                                       world.campaign_category[c], world.user_features[req["user"]])
    p_tpl = true_ctr(world, beta0, req, tpl)
    p_orc = true_ctr(world, beta0, req, oracle_creatives(world, req))
    assert np.all(p_orc[:, 0] >= p_tpl.max(1) - 1e-12)


class _PhraseReward:
    """A stand-in learned model: estimated CTR 5 % if a creative contains ``phrase``, else 1 %."""

    def __init__(self, phrase: int):
        self.phrase = phrase

    def reset(self):
        pass

    def estimate(self, request: Request) -> np.ndarray:
        return np.where((request.candidates[..., :4] == self.phrase + 1).any(-1), 0.05, 0.01)

    def observe(self, request, actions, clicks):
        pass


def test_finetune_moves_generator_towards_the_reward(world, trained, requests):
    model, _ = trained
    target = int(LEXICON.phrases_by_role["urgency"][0])
    reward = _PhraseReward(target)
    tuned, curve = finetune(model, world, reward, FinetuneConfig(steps=30, requests_per_step=32, lr=3e-3),
                            progress=False)
    values = requests[1]
    share = lambda m: float((CreativeGenerator(m).candidates(values, 8, seed=0)[..., :4] == target + 1).any(-1).mean())
    before, after = share(model), share(tuned)
    assert after > before + 0.2, (before, after)
    assert np.mean(curve["est_ctr"][-5:]) > np.mean(curve["est_ctr"][:5])
    assert ROLES[LEXICON.phrase_role[target]] == "urgency"


def test_requests_and_corpus_keep_to_the_users_given(world):
    from adsim.generator.conditioning import user_fields
    from adsim.users import held_out_users, seen_user_ids

    every = sample_requests(world, 300, np.random.default_rng(5))
    same = sample_requests(world, 300, np.random.default_rng(5), users=np.arange(world.config.n_users))
    assert all(np.array_equal(every[k], same[k]) for k in every)  # all the users: the very same draws
    seen = seen_user_ids(world.user_features, 0.3, seed=2)
    held = held_out_users(world.user_features, 0.3, seed=2)
    assert np.array_equal(seen, np.flatnonzero(~held)) and 0.2 < held.mean() < 0.4
    corpus = build_corpus(world, 2000, seed=1, users=seen)
    assert not held[corpus.user].any() and held[build_corpus(world, 2000, seed=1).user].any()
    assert len(np.unique(corpus.user)) > 0.8 * len(seen)  # drawn across the seen users
    rows = corpus.values[:, 8] >= 0  # interests known: the conditioning is the recorded user's
    assert np.array_equal(corpus.values[rows, 8:11], user_fields(world.user_features[corpus.user[rows]], 4)[:, 4:])
    again = build_corpus(world, 2000, seed=1, users=seen)  # seeded
    assert np.array_equal(again.values, corpus.values) and np.array_equal(again.user, corpus.user)
    for users, error, match in (([0.5, 1.5], TypeError, "integer array of user ids"),
                                (np.array([], dtype=int), ValueError, "non-empty 1-D"),
                                (np.array([0, world.config.n_users]), ValueError, "must be in \\[0, 399\\]"),
                                (np.array([3, 3]), ValueError, "repeated ids")):
        with pytest.raises(error, match=match):
            sample_requests(world, 5, np.random.default_rng(0), users=users)


class _RecordingReward:
    """A constant reward that records the user of every request it scores."""

    def __init__(self):
        self.users = []

    def reset(self):
        pass

    def estimate(self, request: Request) -> np.ndarray:
        self.users.append(request.user_features)
        return np.full(request.candidates.shape[:2], 0.02)

    def observe(self, request, actions, clicks):
        pass


def test_finetune_never_samples_held_out_users(world, trained):
    from adsim.users import held_out_users, seen_user_ids

    model, _ = trained
    cfg = FinetuneConfig(steps=3, requests_per_step=64)
    seen, kept = _RecordingReward(), _RecordingReward()
    finetune(model, world, seen, cfg, progress=False, users=seen_user_ids(world.user_features, 0.3, seed=2))
    finetune(model, world, kept, cfg, progress=False)
    assert not held_out_users(np.concatenate(seen.users), 0.3, seed=2).any()
    assert held_out_users(np.concatenate(kept.users), 0.3, seed=2).mean() > 0.15  # without: they do appear


def test_held_out_fraction_and_split_validation(world):
    from adsim.users import check_held_out_fraction, held_out_users, seen_user_ids

    assert check_held_out_fraction(0) == 0.0 and check_held_out_fraction(0.9) == 0.9
    for bad, error, match in ((0.95, ValueError, "held_out_users == 0.95, must be in \\[0.0, 0.9\\]"),
                              (-0.1, ValueError, "held_out_users == -0.1, must be in"),
                              (float("inf"), ValueError, "must be a finite number"),
                              ("0.2", TypeError, "held_out_users must be a number, got str"),
                              (True, TypeError, "held_out_users must be a number, got bool")):
        with pytest.raises(error, match=match):
            check_held_out_fraction(bad)
    uf = world.user_features
    assert np.array_equal(held_out_users(uf, 0.3, 7), held_out_users(uf, 0.3, 7))  # a pure function of the seed
    assert not np.array_equal(held_out_users(uf, 0.3, 7), held_out_users(uf, 0.3, 8))
    assert (held_out_users(uf, 0.2, 7) <= held_out_users(uf, 0.3, 7)).all()  # nested in the fraction
    with pytest.raises(ValueError, match="holds out all 400 users"):
        seen_user_ids(uf, 1.0)
    with pytest.raises(TypeError, match="seed"):
        held_out_users(uf, 0.2, 1.5)


def test_synthetic_campaigns_cover_every_goal_and_category(world):
    req = sample_requests(world, 2000, np.random.default_rng(0), synthetic_campaigns=True)
    assert len(np.unique(req["goal"] * 100 + req["category"])) == len(GOALS) * 8
    real = sample_requests(world, 50, np.random.default_rng(0))
    from adsim.generator.conditioning import campaign_vectors

    assert np.array_equal(campaign_vectors(world, real["product"], real["goal"]), world.campaign_features[real["campaign"]])


def test_true_ctr_matches_the_env_click_probabilities():
    cfg = make_config(mode="personalized", horizon=5, **SMALL)
    core = SelectionCore(cfg, 16)
    core.seed(range(16))
    core.start_episode()
    ctx = core.request.context_features
    angle = np.arctan2(2 * ctx[:, 0] - 1, 2 * ctx[:, 1] - 1)
    req = {"user": core.user, "product": core.world.campaign_product[core.campaign],
           "goal": core.world.campaign_goal[core.campaign], "category": core.world.campaign_category[core.campaign],
           "hour": np.round(angle * 24 / (2 * np.pi)).astype(np.int64) % 24, "weekend": (ctx[:, 6] > 0.5).astype(np.int64),
           "location": ctx[:, 7:12].argmax(1), "weather": ctx[:, 12:16].argmax(1), "device": ctx[:, 16:19].argmax(1),
           "position": ctx[:, 19:22].argmax(1)}
    np.testing.assert_allclose(true_ctr(core.world, core.beta0, req, core.candidates), core.click_probs, rtol=1e-9)


def test_generate_without_a_trained_model_says_how_to_train_one(tmp_path, capsys):
    from experiments.cli import main

    assert main(["generate", "--goal", "promotion", "--tags", "1", "--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "run `adsim train-generator" in err and "`make install` trains the default one into models/generator" in err
