"""Russian lemmatisation and keyword matching for routing and triage.

Everything here is pure (no database, no I/O besides loading the pymorphy3
dictionaries once per process) and safe to call from several threads.

Conventions shared by every function in this module:

* text is lower-cased and «ё» is folded into «е» in tokens and in lemmas
  (pymorphy3's dictionary spells «гололёд»), so callers never have to care
  about «ё». A «ё» written by the author is still given to pymorphy3, where it
  disambiguates («заём» is a loan, «заем» is read as the verb «заесть»);
* a *token* is a run of Cyrillic/Latin letters, optionally joined by hyphens
  («почему-то», «wi-fi»); digits, punctuation and emoji are not tokens;
* a *keyword* is a word or a phrase of whitespace-separated words that are
  already in lemma form (see :func:`normalise_keywords`), e.g. «горячий вода».
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pymorphy3 import MorphAnalyzer

__all__ = [
    "KeywordHit",
    "KeywordIndex",
    "fold",
    "lemma",
    "lemma_set",
    "lemmatize",
    "lemmatize_tokens",
    "match_keywords",
    "normalise_keywords",
    "split_words",
    "tokenize",
]

# Letters only; a hyphen may join two letter runs («кое-где», «e-mail»).
_TOKEN_RE = re.compile(r"[а-яёa-z]+(?:-[а-яёa-z]+)*")

# Cache size for word -> lemma. Citizen messages reuse a small vocabulary, so
# 100k distinct word forms is far more than a process will see between restarts
# and costs only a few megabytes.
LEMMA_CACHE_SIZE = 100_000

# The most probable pymorphy3 parse is occasionally a rare dictionary word that
# never appears in citizen messages. These overrides map such normal forms to
# the reading that matters for us (keys and values are «ё»-folded lemmas).
LEMMA_OVERRIDES: dict[str, str] = {
    # «ямы», «ямами» parse as the obsolete noun «ям» (a coach station).
    "ям": "яма",
    # «холодные (батареи)» parse as the noun «холодное» (cold weapons).
    "холодное": "холодный",
}

_analyzer: MorphAnalyzer | None = None
_analyzer_lock = threading.Lock()


def _get_analyzer() -> MorphAnalyzer:
    """Return the process-wide MorphAnalyzer, creating it on first use.

    Loading the dictionaries takes ~0.2 s and tens of megabytes, so it is done
    lazily and exactly once (double-checked locking). Parsing afterwards only
    reads the dictionaries and is safe to share between threads.
    """
    global _analyzer
    analyzer = _analyzer
    if analyzer is None:
        with _analyzer_lock:
            analyzer = _analyzer
            if analyzer is None:
                from pymorphy3 import MorphAnalyzer

                analyzer = MorphAnalyzer(lang="ru")
                _analyzer = analyzer
    return analyzer


def fold(text: str) -> str:
    """Lower-case the text and fold «ё» into «е»."""
    return text.lower().replace("ё", "е")


def split_words(text: str) -> list[str]:
    """Split text into lower-case Cyrillic/Latin words, keeping «ё» for the parser."""
    return _TOKEN_RE.findall(text.lower())


def tokenize(text: str) -> list[str]:
    """Split text into folded (lower-case, «ё»→«е») Cyrillic/Latin word tokens."""
    return [word.replace("ё", "е") for word in split_words(text)]


@lru_cache(maxsize=LEMMA_CACHE_SIZE)
def _lemma_of_token(token: str) -> str:
    # The token may still contain «ё» (see split_words); only the result is folded.
    parses = _get_analyzer().parse(token)
    if not parses:  # pragma: no cover - pymorphy3 always returns a guess
        return token
    normal = str(parses[0].normal_form).replace("ё", "е")
    return LEMMA_OVERRIDES.get(normal, normal)


def lemma(word: str) -> str:
    """Return the lemma of one word (normal form of the most probable parse).

    The word is lower-cased first, so «Дороги» and «дороги» share one cache
    entry. Results are memoised in an LRU cache (see ``LEMMA_CACHE_SIZE``).
    """
    return _lemma_of_token(word.strip().lower())


def lemmatize_tokens(tokens: Iterable[str]) -> list[str]:
    """Lemmatise lower-case words (from :func:`split_words` or :func:`tokenize`).

    The result is aligned with the input index by index.
    """
    return [_lemma_of_token(token) for token in tokens]


def lemmatize(text: str) -> list[str]:
    """Tokenise the text and return the lemma of every token, in text order.

    >>> lemmatize("Когда починят дороги?")
    ['когда', 'починить', 'дорога']
    """
    return lemmatize_tokens(split_words(text))


def lemma_set(text: str) -> frozenset[str]:
    """Distinct lemmas of the text (for order-independent single-word checks)."""
    return frozenset(lemmatize(text))


def normalise_keywords(keywords: Iterable[str]) -> list[str]:
    """Bring keywords and phrases to lemma form, one output per input.

    Every word of a phrase is lemmatised on its own, so «горячая вода» becomes
    «горячий вода» — exactly what :func:`lemmatize` yields for «нет горячей
    воды». Punctuation inside a keyword is dropped; a keyword with no letters
    becomes an empty string (which never matches). Order is preserved.
    """
    return [" ".join(lemmatize(keyword)) for keyword in keywords]


def _split_keyword(keyword: str) -> tuple[str, ...]:
    # Keywords are expected in lemma form already; folding and whitespace
    # splitting are idempotent, so they are applied defensively.
    return tuple(fold(keyword).split())


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """One occurrence of a keyword: ``words[start:end]`` of the searched sequence."""

    keyword: str
    start: int
    end: int


class KeywordIndex:
    """Keywords pre-split and indexed by their first word for fast repeated search.

    Build one per vocabulary at import time and call :meth:`find` per message;
    :func:`match_keywords` builds a throw-away index for one-off calls.
    """

    __slots__ = ("_by_first", "_keywords")

    def __init__(self, keywords: Iterable[str]) -> None:
        self._keywords: tuple[str, ...] = tuple(dict.fromkeys(keywords))
        self._by_first: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for keyword in self._keywords:
            words = _split_keyword(keyword)
            if not words:
                continue
            self._by_first.setdefault(words[0], []).append((keyword, words))

    @property
    def keywords(self) -> tuple[str, ...]:
        return self._keywords

    def find(self, words: Sequence[str]) -> list[KeywordHit]:
        """Every occurrence of every keyword in ``words``, phrases as consecutive words.

        Hits are ordered by position, longer phrases first at the same position.
        Overlapping hits are all reported (e.g. «нет вода» and «вода»).
        """
        hits: list[KeywordHit] = []
        size = len(words)
        for start, word in enumerate(words):
            candidates = self._by_first.get(word)
            if not candidates:
                continue
            matched = [
                KeywordHit(keyword, start, start + len(parts))
                for keyword, parts in candidates
                if start + len(parts) <= size
                and all(words[start + i] == parts[i] for i in range(1, len(parts)))
            ]
            matched.sort(key=lambda hit: hit.start - hit.end)
            hits.extend(matched)
        return hits

    def present(self, words: frozenset[str] | Sequence[str]) -> set[str]:
        """Keywords found in ``words``.

        A sequence is searched with phrase order respected. A frozenset has no
        order, so a phrase counts as present when all its words are present.
        """
        if isinstance(words, frozenset):
            found: set[str] = set()
            for first in self._by_first.keys() & words:
                for keyword, parts in self._by_first[first]:
                    if all(part in words for part in parts):
                        found.add(keyword)
            return found
        # Only first words that occur are looked at (a set intersection, not a pass
        # over the words for every index): routing asks every rule of a message.
        present = self._by_first.keys() & set(words)
        if not present:
            return set()
        found = set()
        for first in present:
            for keyword, parts in self._by_first[first]:
                if len(parts) == 1 or _has_phrase(words, parts):
                    found.add(keyword)
        return found

    def matches(self, words: frozenset[str] | Sequence[str], mode: Literal["any", "all"]) -> bool:
        """Whether ``words`` hold any (``mode="any"``) or all of the keywords; an empty
        index matches nothing."""
        if not self._keywords:
            return False
        found = self.present(words)
        if mode == "all":
            return len(found) == len(self._keywords)
        return bool(found)


def _has_phrase(words: Sequence[str], parts: tuple[str, ...]) -> bool:
    """Whether the words of ``parts`` occur consecutively in ``words``."""
    size, first = len(parts), parts[0]
    return any(
        word == first and tuple(words[start : start + size]) == parts
        for start, word in enumerate(words)
    )


def match_keywords(
    lemmas: frozenset[str] | Sequence[str],
    keywords: Sequence[str],
    mode: Literal["any", "all"],
) -> list[str]:
    """Return the keywords (as given) that occur among ``lemmas``.

    ``keywords`` must be in lemma form (use :func:`normalise_keywords`; only
    case and «ё» are normalised here). A phrase matches consecutive lemmas when
    ``lemmas`` is a sequence (e.g. the result of :func:`lemmatize`); with a
    frozenset (e.g. :func:`lemma_set`) order is unknown, so a phrase matches
    when all its words are present.

    * ``mode="any"``: the matched keywords, in the order of ``keywords``,
      without duplicates; empty if none matched.
    * ``mode="all"``: every keyword (deduplicated, in order) if all of them
      matched, otherwise an empty list. An empty ``keywords`` yields ``[]``.
    """
    if mode not in ("any", "all"):
        raise ValueError(f"mode must be 'any' or 'all', not {mode!r}")
    index = KeywordIndex(keywords)
    found = index.present(lemmas)
    if mode == "all":
        if index.keywords and all(keyword in found for keyword in index.keywords):
            return list(index.keywords)
        return []
    return [keyword for keyword in index.keywords if keyword in found]
