"""Parse headline text into lexicon phrases, and render phrases back into text.

The simulator judges a creative by what a reader would recognise in it: the parser matches the
longest lexicon phrase at each position (word level for English, character level for Chinese).
Tokens that match no phrase are counted as *unparsed*; the hidden response model penalises them,
and it penalises a product phrase from the wrong category (off-product text) and a headline with
no product at all. The parser itself is public: policies may call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from adsim.creative.lexicon import LANGUAGES, LEXICON, MAX_PHRASES, Lexicon

MAX_UNPARSED = 8
"""Unparsed-token counts are reported up to this value ("8 or more")."""

_PUNCT_EN = re.compile(r"[!?.,;:]+")
_PUNCT_ZH = re.compile(r"[！？。，、；：!?.,;:\s]+")


def longest_match(units: tuple[str, ...], table: dict[tuple[str, ...], int], max_len: int) -> list[tuple[int | None, str]]:
    """Greedy longest-match segmentation of ``units`` against ``table`` (unit tuple → id).

    Returns one ``(id, first unit)`` per matched phrase and ``(None, unit)`` per unit that starts no
    phrase, in order.
    """
    out, i = [], 0
    while i < len(units):
        for n in range(min(max_len, len(units) - i), 0, -1):
            pid = table.get(units[i : i + n])
            if pid is not None:
                out.append((pid, units[i]))
                i += n
                break
        else:
            out.append((None, units[i]))
            i += 1
    return out


@dataclass(frozen=True)
class Parse:
    """The result of parsing one headline."""

    phrases: tuple[int, ...]  # matched phrase ids, in order
    n_unparsed: int  # tokens that matched no phrase
    overflow: int  # phrases beyond MAX_PHRASES (dropped from the id vector, counted as unparsed)

    def slots(self) -> np.ndarray:
        """(MAX_PHRASES,) phrase slots: phrase id + 1, 0 for empty."""
        out = np.zeros(MAX_PHRASES, dtype=np.int64)
        kept = self.phrases[:MAX_PHRASES]
        out[: len(kept)] = np.asarray(kept, dtype=np.int64) + 1
        return out

    @property
    def unparsed_reported(self) -> int:
        return min(self.n_unparsed + self.overflow, MAX_UNPARSED)


class HeadlineParser:
    """Longest-match parser over the lexicon for one language."""

    def __init__(self, language: str = "en", lexicon: Lexicon = LEXICON):
        if language not in LANGUAGES:
            raise ValueError(f"language == {language!r}, must be one of {LANGUAGES}")
        self.language = language
        self.lexicon = lexicon
        texts = lexicon.texts[language]
        self._table: dict[tuple[str, ...], int] = {self._tokens(t): i for i, t in enumerate(texts)}
        if len(self._table) != len(texts):
            raise ValueError(f"lexicon has duplicate {language} phrases")
        self._max_len = max(len(k) for k in self._table)

    def _tokens(self, text: str) -> tuple[str, ...]:
        if self.language == "en":
            return tuple(_PUNCT_EN.sub(" ", text.lower()).split())
        return tuple(ch for ch in _PUNCT_ZH.sub("", text))

    def parse(self, text: str) -> Parse:
        """Parse a headline into phrase ids and a count of unparsed tokens."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        segments = longest_match(self._tokens(text), self._table, self._max_len)
        found = tuple(pid for pid, _ in segments if pid is not None)
        bad = len(segments) - len(found)
        return Parse(found, bad, max(0, len(found) - MAX_PHRASES))

    def render(self, phrases) -> str:
        """Text of a sequence of phrase ids (or phrase slots with 0 = empty when ``slots``)."""
        texts = self.lexicon.texts[self.language]
        parts = [texts[int(p)] for p in phrases]
        return " ".join(parts) if self.language == "en" else "".join(parts)

    def render_slots(self, slots: np.ndarray) -> str:
        """Text of a creative's phrase slots (phrase id + 1, 0 = empty)."""
        return self.render([s - 1 for s in np.asarray(slots) if s > 0])
