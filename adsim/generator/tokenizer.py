"""Tokens of the creative generator: conditioning fields, headline phrases, visual attributes.

One id layout serves both languages::

    [specials | conditioning-field tokens | phrase tokens | attribute tokens | surface fallback]

* specials: ``<pad> <bos> <eos> <sep>``;
* conditioning fields (:data:`FIELDS`): one token per value of each field plus a ``none`` token
  (the field is unknown for this request), e.g. ``goal=promotion``, ``tag1=3``, ``hour=none``;
* phrase tokens: one per lexicon phrase; the same id in English and Chinese (the hidden appeal of a
  phrase does not depend on the language it is rendered in);
* attribute tokens: one per visual-attribute value (``template=card`` …);
* surface fallback: the lexicon's English words (word level) or Chinese characters (character
  level), so any text over the lexicon's surface units round-trips, phrases or not.

The model reads conditioning tokens and writes phrase, ``<sep>`` and attribute tokens; the text
tokenizer (:class:`Tokenizer`) turns headline text into ids by longest phrase match with the
fallback units in between, and back into the exact text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from adsim.creative.lexicon import ATTRIBUTES, CATEGORIES, GOALS, LANGUAGES, LEXICON, Lexicon
from adsim.creative.parser import longest_match
from adsim.validation import check_choice
from adsim.world import DEMOGRAPHICS, DEVICES, DISCOUNTS, HOUR_BUCKETS, LOCATIONS, PRICE_TIERS, WEATHERS

SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>")
PAD, BOS, EOS, SEP = range(4)


def conditioning_fields(n_interest_tags: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(field name, value names) of every conditioning field, in encoder order."""
    tags = tuple(str(i) for i in range(n_interest_tags))
    return (
        ("goal", GOALS),
        ("category", CATEGORIES),
        ("tier", tuple(str(i) for i in range(PRICE_TIERS))),
        ("discount", tuple(f"{d:.1f}" for d in DISCOUNTS)),
        ("age", tuple(str(i) for i in range(DEMOGRAPHICS["age_band"]))),
        ("gender", tuple(str(i) for i in range(DEMOGRAPHICS["gender"]))),
        ("occupation", tuple(str(i) for i in range(DEMOGRAPHICS["occupation"]))),
        ("city", tuple(str(i) for i in range(DEMOGRAPHICS["city_tier"]))),
        ("tag1", tags),
        ("tag2", tags),
        ("top_category", CATEGORIES),
        ("hour", tuple(str(i) for i in range(HOUR_BUCKETS))),
        ("weekend", ("0", "1")),
        ("location", LOCATIONS),
        ("weather", WEATHERS),
        ("device", DEVICES),
    )


N_FIELDS = 16
"""Conditioning fields (encoder sequence length)."""


@dataclass(frozen=True)
class Vocab:
    """The id layout shared by tokenizer and model. ``n_model`` ids are seen by the model."""

    n_interest_tags: int = 8
    lexicon: Lexicon = LEXICON

    @cached_property
    def fields(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return conditioning_fields(self.n_interest_tags)

    @cached_property
    def field_offsets(self) -> np.ndarray:
        """(N_FIELDS,) id of each field's first value; value v is offset+v, ``none`` is offset+n."""
        sizes = [len(v) + 1 for _, v in self.fields]
        return len(SPECIALS) + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @cached_property
    def field_sizes(self) -> np.ndarray:
        """(N_FIELDS,) number of values of each field (without ``none``)."""
        return np.array([len(v) for _, v in self.fields], dtype=np.int64)

    @property
    def phrase_offset(self) -> int:
        return int(self.field_offsets[-1] + self.field_sizes[-1] + 1)

    @property
    def attr_offset(self) -> int:
        return self.phrase_offset + self.lexicon.n_phrases

    @cached_property
    def attr_kind_offsets(self) -> np.ndarray:
        """(n_attr_kinds,) first token id of each attribute kind."""
        return self.attr_offset + self.lexicon.attr_offsets

    @property
    def n_model(self) -> int:
        """Ids the model embeds and predicts (everything but the surface fallback)."""
        return self.attr_offset + self.lexicon.n_attr_values

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Readable name of every model id."""
        out = list(SPECIALS)
        for name, values in self.fields:
            out += [f"{name}={v}" for v in values] + [f"{name}=none"]
        out += [f"<{t}>" for t in self.lexicon.texts["en"]]
        out += [f"{k}={v}" for k, vals in ATTRIBUTES.items() for v in vals]
        assert len(out) == self.n_model
        return tuple(out)


class Tokenizer:
    """Headline text ↔ token ids for one language; exact round trip.

    English is tokenised at phrase level with lexicon words as fallback (words are separated by
    single spaces); Chinese at phrase level with lexicon characters as fallback (no separators).
    Longest phrase match first, as :class:`adsim.creative.parser.HeadlineParser` reads text.
    """

    def __init__(self, language: str = "en", vocab: Vocab | None = None):
        check_choice("language", language, LANGUAGES)
        self.language = language
        self.vocab = vocab if vocab is not None else Vocab()
        texts = self.vocab.lexicon.texts[language]
        self._phrases = {self._units(t): self.vocab.phrase_offset + i for i, t in enumerate(texts)}
        self._max_len = max(len(k) for k in self._phrases)
        units = sorted({u for t in texts for u in self._units(t)})
        self.fallback_offset = self.vocab.n_model
        self._unit_id = {u: self.fallback_offset + i for i, u in enumerate(units)}
        self._surface = {i: u for u, i in self._unit_id.items()}
        self._surface.update({i: t for t, i in zip(texts, self._phrases.values())})

    @property
    def size(self) -> int:
        """Total ids, the surface fallback included."""
        return self.fallback_offset + len(self._unit_id)

    def _units(self, text: str) -> tuple[str, ...]:
        return tuple(text.split(" ")) if self.language == "en" else tuple(text)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; raises ``ValueError`` on a unit outside the lexicon."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if text == "":
            return []
        units = self._units(text)
        if self.language == "en" and "" in units:
            raise ValueError(f"text {text!r}: English words must be separated by single spaces")
        ids = []
        for pid, unit in longest_match(units, self._phrases, self._max_len):
            if pid is None:
                pid = self._unit_id.get(unit)
                if pid is None:
                    raise ValueError(f"text {text!r}: {unit!r} is not a {self.language} lexicon unit")
            ids.append(pid)
        return ids

    def decode(self, ids) -> str:
        """Text of phrase and fallback ids (other ids, e.g. ``<sep>`` or attributes, raise)."""
        parts = []
        for i in ids:
            s = self._surface.get(int(i))
            if s is None:
                raise ValueError(f"token id {int(i)} is not a {self.language} text token")
            parts.append(s)
        return " ".join(parts) if self.language == "en" else "".join(parts)

    def render_phrases(self, phrase_ids) -> str:
        """Text of lexicon phrase ids (0-based phrase indices, not token ids)."""
        return self.decode([self.vocab.phrase_offset + int(p) for p in phrase_ids])
