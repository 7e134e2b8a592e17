from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.routing import lemmas
from app.routing.lemmas import (
    KeywordIndex,
    lemma,
    lemma_set,
    lemmatize,
    match_keywords,
    normalise_keywords,
    tokenize,
)

# ---------------------------------------------------------------- tokenize


def test_tokenize_lowercases_folds_yo_and_drops_non_words() -> None:
    assert tokenize("Ёлки-палки! ЖКХ, дом №5, Wi-Fi 😡") == [
        "елки-палки",
        "жкх",
        "дом",
        "wi-fi",
    ]


def test_tokenize_empty_and_symbols() -> None:
    assert tokenize("") == []
    assert tokenize("  ?!… 123 👍 ") == []


# ---------------------------------------------------------------- lemmatize


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("дороги", "дорога"),
        ("дорогу", "дорога"),
        ("Дорогами", "дорога"),
        ("отопления", "отопление"),
        ("отоплением", "отопление"),
        ("воды", "вода"),
        ("ямы", "яма"),  # override: most probable parse is the obsolete «ям»
        ("ямами", "яма"),
        ("фонари", "фонарь"),
        ("мусора", "мусор"),
        ("поликлинику", "поликлиника"),
        ("благодарю", "благодарить"),
        ("молодцы", "молодец"),
        ("работает", "работать"),
        ("подскажите", "подсказать"),
        ("гололёд", "гололед"),  # ё folded in the pymorphy3 normal form too
        ("гололед", "гололед"),
        ("ЗАТОПИЛО", "затопить"),
    ],
)
def test_lemma_examples(word: str, expected: str) -> None:
    assert lemma(word) == expected


def test_lemmatize_sentence_keeps_order_and_alignment() -> None:
    text = "Когда починят дороги и дадут отопление?"
    assert lemmatize(text) == ["когда", "починить", "дорога", "и", "дать", "отопление"]
    assert len(lemmatize(text)) == len(tokenize(text))


def test_lemmatize_folds_yo_everywhere() -> None:
    result = lemmatize("Всё ещё гололёд, ёлка упала")
    assert all("ё" not in item for item in result)
    assert "гололед" in result
    assert "елка" in result


def test_written_yo_reaches_the_parser() -> None:
    # «заём» is a loan; without «ё» pymorphy3 prefers the verb «заесть»
    assert lemmatize("Заём под залог") == ["заем", "под", "залог"]
    assert tokenize("Заём") == ["заем"]


def test_lemma_set() -> None:
    assert lemma_set("Дороги, дорогу, дорогами!") == frozenset({"дорога"})
    assert lemma_set("") == frozenset()


def test_lemma_is_cached() -> None:
    before = lemmas._lemma_of_token.cache_info()
    lemma("светофоры")
    lemma("Светофоры")
    after = lemmas._lemma_of_token.cache_info()
    assert after.hits >= before.hits + 1
    assert lemmas._lemma_of_token.cache_info().maxsize == lemmas.LEMMA_CACHE_SIZE


# ---------------------------------------------------------------- analyzer


def test_analyzer_is_a_lazily_created_singleton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lemmas, "_analyzer", None)
    barrier = threading.Barrier(8)

    def grab() -> object:
        barrier.wait()
        return lemmas._get_analyzer()

    with ThreadPoolExecutor(max_workers=8) as pool:
        analyzers = list(pool.map(lambda _: grab(), range(8)))
    assert all(item is analyzers[0] for item in analyzers)
    assert lemmas._get_analyzer() is analyzers[0]


def test_lemmatize_is_thread_safe() -> None:
    texts = [
        "Нет горячей воды третий день",
        "Когда уберут снег во дворе?",
        "Спасибо за ремонт дороги",
        "Не горят фонари на улице Мира",
    ] * 50
    expected = [lemmatize(text) for text in texts]
    lemmas._lemma_of_token.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        actual = list(pool.map(lemmatize, texts))
    assert actual == expected


# ---------------------------------------------------------------- keywords


def test_normalise_keywords_words_and_phrases() -> None:
    assert normalise_keywords(["Горячая вода", "дороги", "нет отопления", "ЯМЫ"]) == [
        "горячий вода",
        "дорога",
        "нет отопление",
        "яма",
    ]


def test_normalise_keywords_edge_cases() -> None:
    assert normalise_keywords([]) == []
    assert normalise_keywords(["  уличное   освещение  ", "!!!"]) == ["уличный освещение", ""]


def test_normalised_phrase_matches_inflected_text() -> None:
    keywords = normalise_keywords(["горячая вода", "отопление"])
    assert match_keywords(lemmatize("Нет горячей воды с понедельника"), keywords, "any") == [
        "горячий вода"
    ]


def test_match_any_returns_matches_in_keyword_order() -> None:
    text = lemmatize("Во дворе яма, фонари не горят, мусор не вывозят")
    keywords = ["мусор", "яма", "снег", "фонарь"]
    assert match_keywords(text, keywords, "any") == ["мусор", "яма", "фонарь"]


def test_match_any_deduplicates_and_returns_empty_on_no_match() -> None:
    text = lemmatize("Яма на яме")
    assert match_keywords(text, ["яма", "яма"], "any") == ["яма"]
    assert match_keywords(text, ["снег"], "any") == []
    assert match_keywords(text, [], "any") == []


def test_match_all_mode() -> None:
    text = lemmatize("Нет отопления в школе №3, дети мёрзнут")
    assert match_keywords(text, ["отопление", "школа"], "all") == ["отопление", "школа"]
    assert match_keywords(text, ["отопление", "больница"], "all") == []
    assert match_keywords(text, [], "all") == []


def test_phrase_requires_consecutive_lemmas_in_sequence() -> None:
    assert match_keywords(lemmatize("лифт не работает"), ["не работать"], "any") == ["не работать"]
    # both words present but not adjacent
    assert match_keywords(lemmatize("не знаю, лифт работает?"), ["не работать"], "any") == []
    # reversed order is not the phrase
    assert match_keywords(lemmatize("вода горячая"), ["горячий вода"], "any") == []


def test_phrase_against_frozenset_needs_all_words_only() -> None:
    lemmas_set = lemma_set("вода горячая")
    assert match_keywords(lemmas_set, ["горячий вода"], "any") == ["горячий вода"]
    assert match_keywords(lemmas_set, ["холодный вода"], "any") == []
    assert match_keywords(lemmas_set, ["вода", "горячий вода"], "all") == [
        "вода",
        "горячий вода",
    ]


def test_match_keywords_tolerates_case_yo_and_spacing_in_keywords() -> None:
    text = lemmatize("На тротуарах гололёд")
    assert match_keywords(text, ["ГОЛОЛЁД", "  тротуар "], "all") == ["ГОЛОЛЁД", "  тротуар "]


def test_match_keywords_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        match_keywords(["яма"], ["яма"], "some")  # type: ignore[arg-type]


def test_empty_keyword_never_matches() -> None:
    assert match_keywords(lemmatize("яма"), ["", "яма"], "any") == ["яма"]
    assert match_keywords(lemmatize("яма"), ["", "яма"], "all") == []


def test_keyword_index_reports_positions_longest_first() -> None:
    index = KeywordIndex(["нет вода", "нет горячий вода", "вода"])
    words = lemmatize("Опять нет горячей воды")
    hits = [(hit.keyword, hit.start, hit.end) for hit in index.find(words)]
    assert hits == [("нет горячий вода", 1, 4), ("вода", 3, 4)]


# ---------------------------------------------------------------- properties

_russianish = st.text(
    alphabet=st.sampled_from(list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАЁЯ -!?.,ёqwz0😀\n")),
    max_size=80,
)


@settings(max_examples=200, deadline=None, database=None)
@given(_russianish)
def test_lemmatize_properties(text: str) -> None:
    result = lemmatize(text)
    assert len(result) == len(tokenize(text))
    for item in result:
        assert item
        assert "ё" not in item
        assert item == item.lower()
    assert lemma_set(text) == frozenset(result)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["яма", "вода", "не", "работать", "снег", "горячий"]), max_size=12),
    st.lists(
        st.sampled_from(["яма", "горячий вода", "не работать", "снег", "свет"]),
        max_size=5,
    ),
)
def test_match_keywords_properties(words: list[str], keywords: list[str]) -> None:
    any_result = match_keywords(words, keywords, "any")
    all_result = match_keywords(words, keywords, "all")
    assert set(any_result) <= set(keywords)
    assert len(any_result) == len(set(any_result))
    assert all_result in ([], list(dict.fromkeys(keywords)))
    if all_result:
        assert any_result == all_result
    # order-aware matches are a subset of order-free ones
    assert set(any_result) <= set(match_keywords(frozenset(words), keywords, "any"))


_VOCABULARY = ["вода", "горячий", "нет", "свет", "не", "работать", "лифт", "двор"]
_PHRASES = KeywordIndex(
    ["вода", "горячий вода", "нет горячий вода", "не работать", "лифт", "свет нет"]
)


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=12))
def test_present_in_a_sequence_agrees_with_every_occurrence_found(words: list[str]) -> None:
    # `present` looks only at first words that occur; `find` walks every word.
    assert _PHRASES.present(words) == {hit.keyword for hit in _PHRASES.find(words)}


def test_keyword_index_matches_any_or_all() -> None:
    index = KeywordIndex(["отопление", "школа"])
    text = lemmatize("Нет отопления в школе №3")
    assert index.matches(text, "any") and index.matches(text, "all")
    assert index.matches(lemmatize("В школе тепло"), "any")
    assert not index.matches(lemmatize("В школе тепло"), "all")
    assert not KeywordIndex([]).matches(text, "any")
    assert not KeywordIndex([]).matches(text, "all")
