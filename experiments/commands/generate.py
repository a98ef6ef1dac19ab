"""``adsim generate``: K candidate creatives for one request, with the parser's reading of each."""

from __future__ import annotations

import sys

from experiments.options import add_device, check_device_arg


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate candidate creatives for one request and print their parse")
    p.add_argument("--model", default="models/generator", help="directory written by `adsim train-generator`")
    p.add_argument("--goal", required=True, help="campaign goal, e.g. promotion")
    p.add_argument("--category", default="electronics", help="product category of the advertised item")
    p.add_argument("--tags", type=int, nargs="+", required=True, help="one or two interest tag ids of the user")
    p.add_argument("--top-category", default=None, help="the user's most-browsed category (default: --category)")
    p.add_argument("--tier", type=int, default=None, help="price tier 0-2 of the item")
    p.add_argument("--discount", type=float, default=None, help="item discount (0, 0.1, 0.2, 0.3, 0.5)")
    p.add_argument("--n", type=int, default=8, help="candidates (K)")
    p.add_argument("--method", default="nucleus", help="greedy, sample, top_k, nucleus or beam")
    p.add_argument("--language", default="en", help="en or zh")
    p.add_argument("--seed", type=int, default=0)
    add_device(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from adsim.creative.lexicon import ATTRIBUTES, CATEGORIES, ROLES
    from adsim.creative.parser import HeadlineParser
    from adsim.creative.sampler import creative_quality
    from adsim.generator.conditioning import Conditioning
    from adsim.generator.decode import DecodeSpec
    from adsim.generator.generate import CreativeGenerator
    from adsim.generator.tokenizer import Tokenizer

    from adsim.validation import check_int

    check_int("--n", args.n, 1, 256)
    device = check_device_arg(args)
    try:
        gen = CreativeGenerator.load(args.model, DecodeSpec(method=args.method), device)
    except FileNotFoundError as err:
        print(f"adsim generate: {err}", file=sys.stderr)
        return 2
    cond = Conditioning(args.goal, args.category, tuple(args.tags), args.top_category, args.tier, args.discount,
                        n_interest_tags=gen.model.config.n_interest_tags)
    tok, parser = Tokenizer(args.language), HeadlineParser(args.language)
    creatives = gen.candidates(cond.values()[None], args.n, seed=args.seed)[0]
    quality = creative_quality(creatives, np.array(CATEGORIES.index(args.category)))
    print(f"goal={args.goal} category={args.category} tags={list(args.tags)} method={args.method}")
    for i, (cre, q) in enumerate(zip(creatives, quality)):
        text = tok.render_phrases([s - 1 for s in cre[:4] if s > 0])
        parse = parser.parse(text)
        roles = [f"{ROLES[parser.lexicon.phrase_role[p]]}:{parser.lexicon.texts['en'][p]}" for p in parse.phrases]
        attrs = " ".join(f"{k}={v[cre[4 + j]]}" for j, (k, v) in enumerate(ATTRIBUTES.items()))
        flags = [name for name, f in zip(("off_product", "no_product", "repeated_role"), q[:3]) if f]
        print(f"[{i}] {text!r}")
        print(f"    parse: {' | '.join(roles) or '(nothing)'}; unparsed tokens: {parse.n_unparsed}"
              f"{'; ' + ', '.join(flags) if flags else '; well-formed'}")
        print(f"    visual: {attrs}")
        print(f"    id vector: {cre.tolist()}")
    return 0
