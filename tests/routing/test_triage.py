from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.routing.lemmas import lemmatize, normalise_keywords
from app.routing.triage import Classification, Verdict, classify
from app.routing.vocabulary import (
    ADVERTISING_LEMMAS,
    COMPLAINT_LEMMAS,
    GRATITUDE_LEMMAS,
    GREETING_LEMMAS,
    QUESTION_ANYWHERE_LEMMAS,
    QUESTION_SENTENCE_START_LEMMAS,
    REQUEST_LEMMAS,
)

Q = Classification.question
C = Classification.complaint
G = Classification.gratitude
OT = Classification.other
S = Classification.spam

# (text, expected classification, expected rule)
LABELLED: list[tuple[str, Classification, str]] = [
    # --- roads
    ("Когда отремонтируют дорогу на улице Ленина?", Q, "question.mark"),
    (
        "Когда отремонтируют дорогу на Ленина? Сплошные ямы, машины ломаются!",
        C,
        "complaint.vocabulary",
    ),
    ("На Заводской огромная выбоина, уже два колеса пробили", C, "complaint.vocabulary"),
    ("Будет ли в этом году ремонт дороги в посёлке Южный", Q, "question.interrogative"),
    ("Спасибо за новый асфальт на Садовой, ездить одно удовольствие!", G, "gratitude.formula"),
    (
        "Подскажите, кто отвечает за обслуживание дороги до деревни Ключи",
        Q,
        "question.interrogative",
    ),
    # --- heating and water
    (
        "Третий день нет горячей воды в доме 5 по ул. Мира. Сколько можно!",
        C,
        "complaint.vocabulary",
    ),
    (
        "В квартире холодно, батареи холодные, управляющая компания не отвечает",
        C,
        "complaint.vocabulary",
    ),
    ("Когда дадут отопление в домах на Северной?", Q, "question.mark"),
    ("Почему опять отключили горячую воду без предупреждения?", Q, "question.mark"),
    ("Прорвало трубу на Гагарина, 14, вода заливает подвал!", C, "complaint.vocabulary"),
    ("Нас затопило соседи сверху, управляющая компания не приехала", C, "complaint.vocabulary"),
    ("Благодарю аварийную службу водоканала за быструю работу ночью", G, "gratitude.formula"),
    ("Будет ли перерасчёт за отопление за октябрь", Q, "question.interrogative"),
    # --- school meals
    ("В школе №7 детей кормят холодной и невкусной едой", C, "complaint.vocabulary"),
    ("Сколько стоит питание в школьной столовой для многодетных", Q, "question.interrogative"),
    (
        "Почему в школе 12 отменили бесплатные завтраки для начальных классов",
        Q,
        "question.interrogative",
    ),
    ("Школьное питание стало заметно лучше, дети довольны. Молодцы!", G, "gratitude.formula"),
    # --- clinic appointments
    ("Подскажите, как записаться к терапевту в поликлинику №2", Q, "question.interrogative"),
    ("В регистратуру поликлиники невозможно дозвониться с утра", C, "complaint.vocabulary"),
    (
        "Хамство в регистратуре детской поликлиники, медсестра нагрубила маме",
        C,
        "complaint.vocabulary",
    ),
    ("Где можно сдать анализы без записи", Q, "question.interrogative"),
    ("Огромное спасибо врачам инфекционного отделения за маму!", G, "gratitude.formula"),
    ("Прошу помочь с записью к эндокринологу, талонов нет два месяца", Q, "question.request"),
    # --- snow removal
    ("Здравствуйте, когда уберут снег во дворе дома 12 по Садовой", Q, "question.interrogative"),
    ("Двор не чистят уже неделю, ужас, люди падают", C, "complaint.vocabulary"),
    ("На тротуарах гололёд, ничем не посыпано", C, "complaint.vocabulary"),
    ("Спасибо дорожникам, снег убрали очень быстро", G, "gratitude.formula"),
    ("Прошу принять меры по уборке снега у остановки «Школа»", Q, "question.request"),
    # --- street lights
    ("На Октябрьской не горят фонари уже неделю", C, "complaint.vocabulary"),
    ("Когда установят освещение на пешеходном переходе у школы?", Q, "question.mark"),
    ("Спасибо, что наконец-то поставили фонари в парке", G, "gratitude.formula"),
    ("Разберитесь, пожалуйста, с освещением в нашем переулке", Q, "question.request"),
    # --- garbage
    ("Мусор не вывозят вторую неделю, контейнеры переполнены", C, "complaint.vocabulary"),
    ("Кошмар какой-то на контейнерной площадке, стихийная свалка", C, "complaint.vocabulary"),
    ("Какой график вывоза крупногабаритного мусора в частном секторе", Q, "question.interrogative"),
    ("Спасибо, что опять не вывезли мусор", C, "complaint.vocabulary"),
    ("Почему до сих пор не вывезли мусор?", C, "complaint.vocabulary"),
    # --- mixed signals and precedence
    ("Спасибо за ответ, а когда будет горячая вода?", Q, "question.mark"),
    (
        "Спасибо большое, подскажите ещё, куда обращаться по поводу субсидии",
        Q,
        "question.interrogative",
    ),
    ("Как и обещали, дорогу отремонтировали. Спасибо!", G, "gratitude.formula"),
    ("Лифт не работает, помогите!", C, "complaint.vocabulary"),
    ("Хочу узнать, где получить справку о составе семьи", Q, "question.interrogative"),
    ("Жду ответа по моему обращению от 3 марта", Q, "question.request"),
    # --- other
    ("Здравствуйте!", OT, "other.greeting"),
    ("Добрый день, уважаемая администрация!", OT, "other.greeting"),
    ("👍👍👍", G, "gratitude.reaction"),
    ("", OT, "other.empty"),
    ("   \n ", OT, "other.empty"),
    ("Ок", OT, "other.short"),
    ("С праздником", OT, "other.short"),
    ("Красивое фото нашего города, люблю его", OT, "other.no_signal"),
    # --- spam
    (
        "Заработок от 5000 в день без вложений! Подробности https://easy-money.xyz",
        S,
        "spam.advertising",
    ),
    ("Лучшие ставки на спорт, промокод ЛЕТО t.me/bet_super", S, "spam.advertising"),
    ("Смотрите https://vk.com/club1 и https://vk.com/club2", S, "spam.links"),
    ("Кредит без отказа за 5 минут www.zaimy-bystro.ru", S, "spam.advertising"),
    # a single link without advertising is not spam
    ("Опять яма, вот фото https://disk.yandex.ru/i/abc", C, "complaint.vocabulary"),
    ("Не могу записаться через gosuslugi.ru, что делать?", Q, "question.mark"),
    # an e-mail is not a link
    ("Ответьте мне на ivanov@mail.ru, пожалуйста", Q, "question.interrogative"),
]


def test_enough_labelled_examples() -> None:
    assert len(LABELLED) >= 40
    assert {classification for _, classification, _ in LABELLED} == set(Classification)


@pytest.mark.parametrize(("text", "expected", "rule"), LABELLED)
def test_labelled_examples(text: str, expected: Classification, rule: str) -> None:
    verdict = classify(text)
    assert (verdict.classification, verdict.rule) == (expected, rule), verdict.explanation
    assert verdict.explanation


# ---------------------------------------------------------------- explanations


def test_complaint_explanation_quotes_words_from_the_text() -> None:
    verdict = classify("Во дворе яма, лифт не работает")
    assert verdict == Verdict(C, "complaint.vocabulary", "Слова жалобы: «яма», «не работает»")


def test_complaint_explanation_prefers_longest_phrase() -> None:
    verdict = classify("Опять нет горячей воды")
    assert verdict.explanation == "Слова жалобы: «нет горячей воды»"


def test_complaint_explanation_mentions_suppressed_question() -> None:
    verdict = classify("Почему не работает светофор?")
    assert verdict.classification is C
    assert "«не работает»" in verdict.explanation
    assert "вопрос" in verdict.explanation


def test_question_mark_explanation() -> None:
    assert classify("Во сколько открывается МФЦ?").explanation.startswith(
        "Содержит вопросительный знак"
    )


def test_question_explanation_lists_all_signals() -> None:
    verdict = classify("Подскажите, пожалуйста, где получить полис?")
    assert verdict.rule == "question.mark"
    assert "«подскажите»" in verdict.explanation


def test_gratitude_explanation() -> None:
    assert classify("Спасибо большое!").explanation == "Слова благодарности: «спасибо»"


def test_explanation_is_capped() -> None:
    text = "Ужас, кошмар, безобразие, беспредел, бардак, позор, издевательство"
    explanation = classify(text).explanation
    assert explanation.endswith("и др.")
    assert explanation.count("«") == 5


# ---------------------------------------------------------------- question-word position


def test_conjunction_when_mid_sentence_is_not_a_question() -> None:
    assert classify("Сообщим соседям, когда придут рабочие").rule == "other.no_signal"


def test_interrogative_after_greeting_and_particle() -> None:
    verdict = classify("Добрый день, а где теперь принимает участковый")
    assert verdict.rule == "question.interrogative"
    assert "«где»" in verdict.explanation


def test_interrogative_after_sentence_break() -> None:
    assert classify("Живу на Лесной. Куда делась остановка автобуса").rule == (
        "question.interrogative"
    )


def test_request_uses_word_forms_not_lemmas() -> None:
    # «помогли» shares the lemma with «помогите», but is a thank-you
    assert classify("Спасибо, что помогли с вывозом веток").classification is G
    assert classify("Помогите с вывозом веток после покоса").rule == "question.request"


# ---------------------------------------------------------------- attachments


def test_attachment_only_is_a_question() -> None:
    verdict = classify("", has_attachments=True)
    assert verdict.classification is Q
    assert verdict.rule == "question.attachment_only"
    assert "вложение" in verdict.explanation.lower()


def test_attachment_with_emoji_only_is_attachment_only() -> None:
    assert classify("📷", has_attachments=True).rule == "question.attachment_only"


def test_attachment_with_caption_without_signal() -> None:
    assert classify("Двор дома 8", has_attachments=True).rule == "question.attachment"
    assert classify("Здравствуйте", has_attachments=True).rule == "question.attachment"


def test_attachment_does_not_override_text_signals() -> None:
    assert classify("Вот такая яма", has_attachments=True).classification is C
    assert classify("Спасибо за площадку!", has_attachments=True).classification is G


def test_empty_without_attachment_is_other() -> None:
    assert classify("", has_attachments=False).rule == "other.empty"


def test_bare_question_mark_and_link() -> None:
    assert classify("?").rule == "question.mark"
    assert classify("https://vk.com/wall-1_2").rule == "other.link_only"


# ---------------------------------------------------------------- spam


def test_repeated_text_from_same_author_is_spam() -> None:
    text = "Когда уберут снег?"
    verdict = classify(text, recent_texts=["когда уберут снег", "КОГДА уберут снег!!", "привет"])
    assert verdict == Verdict(S, "spam.repeated", "Тот же текст от автора уже приходил 2 раза")


def test_single_repeat_is_not_spam() -> None:
    text = "Когда уберут снег?"
    assert classify(text, recent_texts=[text, "другое"]).classification is Q


def test_five_repeats_plural() -> None:
    verdict = classify("Купи слона", recent_texts=["купи слона"] * 5)
    assert verdict.explanation.endswith("5 раз")


def test_empty_text_repeats_are_not_spam() -> None:
    assert classify("", has_attachments=True, recent_texts=["", "", ""]).classification is Q


def test_link_count_plural() -> None:
    text = " ".join(f"https://site{i}.ru" for i in range(5))
    assert classify(text).explanation == "Содержит 5 ссылок"


def test_link_parts_are_not_read_as_words() -> None:
    # «casino» and «bonus» inside the URL must not become advertising words
    assert classify("Фото ямы тут https://casino-bonus.example.com/yama").rule == (
        "complaint.vocabulary"
    )


def test_cyrillic_domain_is_a_link() -> None:
    assert classify("Скидки до 90% на сайте скидки-тут.рф").rule == "spam.advertising"


def test_advertising_words_without_link_are_not_spam() -> None:
    assert classify("Какая ставка по льготному кредиту для молодых семей?").classification is Q


# ---------------------------------------------------------------- vocabularies


# Lemmas that pymorphy3 parses as another word when given bare, with a real form.
NON_IDEMPOTENT_LEMMAS = {
    "заем": "займы",  # bare «заем» is read as the verb «заесть»
    "микрозаем": "микрозаймы",
    "биткоин": "биткоинов",  # bare «биткоин» -> «биткоина»
}


@pytest.mark.parametrize(
    "vocabulary",
    [
        ADVERTISING_LEMMAS,
        COMPLAINT_LEMMAS,
        GRATITUDE_LEMMAS,
        GREETING_LEMMAS,
        QUESTION_ANYWHERE_LEMMAS,
        QUESTION_SENTENCE_START_LEMMAS,
        REQUEST_LEMMAS,
    ],
)
def test_vocabularies_are_in_lemma_form(vocabulary: tuple[str, ...]) -> None:
    # Every entry must be what lemmatize() yields for real text, otherwise it never
    # matches. Usually that means the entry survives lemmatisation unchanged; the
    # few lemmas pymorphy3 reads differently on their own are checked via a form.
    for entry, normalised in zip(vocabulary, normalise_keywords(vocabulary), strict=True):
        if entry in NON_IDEMPOTENT_LEMMAS:
            assert entry in lemmatize(NON_IDEMPOTENT_LEMMAS[entry])
        else:
            assert normalised == entry
    assert len(set(vocabulary)) == len(vocabulary)
    assert all(re.fullmatch(r"[а-я-]+( [а-я-]+)*", entry) for entry in vocabulary)


def test_negation_phrase_needs_the_negation() -> None:
    assert classify("Лифт работает, всё хорошо").classification is not C
    assert lemmatize("лифт не работает")[1:] == ["не", "работать"]


# ---------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.text(max_size=200),
    st.booleans(),
    st.lists(st.text(max_size=30), max_size=3),
)
def test_classify_is_total_and_deterministic(
    text: str, has_attachments: bool, recent: list[str]
) -> None:
    first = classify(text, has_attachments=has_attachments, recent_texts=recent)
    second = classify(text, has_attachments=has_attachments, recent_texts=recent)
    assert first == second
    assert isinstance(first.classification, Classification)
    assert re.fullmatch(r"[a-z]+\.[a-z_]+", first.rule)
    assert first.rule.split(".")[0] == first.classification.value
    assert first.explanation


@settings(max_examples=100, deadline=None, database=None)
@given(st.sampled_from([text for text, _, _ in LABELLED if text.strip()] + ["Ещё гололёд!"]))
def test_case_and_yo_do_not_change_the_verdict(text: str) -> None:
    assert classify(text.upper()) == classify(text)
    # authors often type «е» for «ё»: «ещё»/«еще», «гололёд»/«гололед»
    assert classify(text.replace("ё", "е")).classification == classify(text).classification
