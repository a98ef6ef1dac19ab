"""Transformer creative generator: personalised ad text and visual attributes in real time.

``tokenizer`` (ids and text), ``conditioning`` (request → conditioning fields, teacher corpus),
``model`` (encoder–decoder with KV cache), ``decode`` (greedy, top-k, nucleus, beam),
``generate`` (the batched service), ``train`` (pre-training), ``source`` (a ``CandidateSource`` for
the envs), ``scenario`` (a generator directory in a CreativeSelection env, on the template
scenario's world and β0), ``evaluate`` (truth-based evaluation), ``reward`` and ``finetune`` (CTR-driven
policy-gradient fine-tuning against a learned CTR model).
"""
