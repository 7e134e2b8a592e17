"""Triage vocabularies: the word lists the classifier in :mod:`app.routing.triage` matches.

Lemma-form lists are as produced by :func:`app.routing.lemmas.lemmatize`; phrases are
consecutive lemmas, negation is written as a phrase: «не работать». Request and
imperative forms are word forms instead, because lemmatisation would merge «помогите»
(a request) with «помогли» (a thank-you).
"""

from __future__ import annotations

__all__ = [
    "ADVERTISING_LEMMAS",
    "COMPLAINT_LEMMAS",
    "GRATITUDE_LEMMAS",
    "GREETING_LEMMAS",
    "NOT_QUESTION_OPENINGS_LEMMAS",
    "QUESTION_ANYWHERE_LEMMAS",
    "QUESTION_FORMS",
    "QUESTION_SENTENCE_START_LEMMAS",
    "REACTION_IGNORED",
    "REACTION_SYMBOLS",
    "REQUEST_FORMS",
    "REQUEST_LEMMAS",
    "SENTENCE_LEAD_LEMMAS",
    "STICKER_ATTACHMENTS",
]

# Advertising words; they make a message spam only together with a link.
ADVERTISING_LEMMAS: tuple[str, ...] = (
    "заработок",
    "заработать",
    "пассивный доход",
    "доход",
    "казино",
    "слот",
    "ставка",
    "букмекер",
    "выигрыш",
    "выиграть",
    "кредит",
    "заем",
    "микрозаем",
    "подписываться",
    "подписаться",
    "скидка",
    "распродажа",
    "промокод",
    "бонус",
    "инвестиция",
    "инвестировать",
    "криптовалюта",
    "биткоин",
    "биткоина",  # «биткоины», «биткоином» lemmatise to this
)

# Complaint vocabulary: words and phrases that report a problem or discontent.
# Only words that signal a problem by themselves belong here: topic nouns such
# as «мусор» or «снег» do not («когда вывоз мусора?» is a plain question).
COMPLAINT_LEMMAS: tuple[str, ...] = (
    # explicit complaint and indignation
    "жалоба",
    "жаловаться",
    "пожаловаться",
    "безобразие",
    "безобразно",
    "возмутительно",
    "возмутительный",
    "возмущать",
    "возмутить",
    "возмущение",
    "беспредел",
    "бардак",
    "издевательство",
    "позор",
    "халатность",
    "бездействие",
    "хамство",
    "хамить",
    "нахамить",
    "грубость",
    "грубить",
    "нагрубить",
    "ужас",
    "ужасно",
    "ужасный",
    "кошмар",
    "кошмарно",
    "кошмарный",
    "отвратительный",  # also «отвратительно»
    "невозможно",
    "сколько можно",
    "плохо",
    "плохой",
    "некачественный",
    "невкусно",
    "невкусный",
    "антисанитария",
    "свалка",
    "помойка",
    "грязь",
    "грязно",
    "грязный",
    # road, yard and building defects, hazards
    "яма",
    "выбоина",
    "колдобина",
    "сломать",
    "сломаться",
    "поломка",
    "разбитый",
    "разрушаться",
    "обрушиться",
    "обвалиться",
    "аварийный дом",
    "аварийный дерево",
    "аварийный состояние",
    "опасно",
    "опасный",
    "гололед",
    "наледь",
    "сосулька",
    # accidents and leaks
    "прорыв",
    "прорвать",
    "авария",
    "затопить",
    "потоп",
    "протекать",
    "протечка",
    "течь",
    "потечь",
    # utilities missing
    "нет вода",
    "нет горячий вода",
    "нет холодный вода",
    "нет отопление",
    "нет свет",
    "нет электричество",
    "нет газ",
    "без вода",
    "без горячий вода",
    "без отопление",
    "без свет",
    "без электричество",
    "холодный батарея",
    "батарея холодный",
    "холодно",
    "отсутствовать",
    # services not done (negation phrases)
    "не работать",
    "не гореть",
    "не греть",
    "не вывозить",
    "не вывезти",
    "не убирать",
    "не убрать",
    "не чистить",
    "не почистить",
    "не чищеный",
    "не расчистить",
    "не посыпать",
    "не отвечать",
    "не ответить",
    "не дозвониться",
    "не мочь дозвониться",
    "невозможно дозвониться",
    "не приехать",
    "не прийти",
    "не принять",
    "не реагировать",
)

# Question words that are interrogative anywhere in a sentence.
QUESTION_ANYWHERE_LEMMAS: tuple[str, ...] = (
    "почему",
    "зачем",
    "что делать",
    "куда обращаться",
    "куда обратиться",
    "к кто обращаться",
    "к кто обратиться",
    "можно ли",
    "быть ли",
    "ли",
    "хотеть узнать",
    "хотеть уточнить",
    "хотеться бы узнать",
    "интересовать",
)

# Question words that are interrogative only at the start of a sentence; in the
# middle they are usually conjunctions («сообщу, когда придут»).
QUESTION_SENTENCE_START_LEMMAS: tuple[str, ...] = (
    "когда",
    "где",
    "как",
    "сколько",
    "куда",
    "откуда",
    "кто",
    "что",
    "какой",
    "каковой",
    "чей",
    "разве",
    "неужели",
)

# Sentence openings that start with a question word but are not questions.
NOT_QUESTION_OPENINGS_LEMMAS: tuple[str, ...] = (
    "как и",
    "как всегда",
    "как обычно",
    "как только",
    "как будто",
    "как известно",
    "как сказать",
    "что касаться",
    "кто бы",
)

# Words skipped when looking for the first word of a sentence:
# «Здравствуйте, а когда…», «Добрый день, уважаемая администрация! Где…».
SENTENCE_LEAD_LEMMAS: frozenset[str] = frozenset(
    {
        "здравствуйте",
        "здравствуй",
        "добрый",
        "день",
        "утро",
        "вечер",
        "время",
        "сутки",
        "привет",
        "приветствовать",
        "уважаемый",
        "администрация",
        "пожалуйста",
        "а",
        "и",
        "но",
        "так",
        "вот",
        "ну",
        "еще",
        "тогда",
    }
)

# Imperative "tell me" forms (word forms, not lemmas): interrogative.
QUESTION_FORMS: tuple[str, ...] = (
    "подскажите",
    "подскажи",
    "скажите",
    "скажи",
    "объясните",
    "поясните",
    "уточните",
    "сообщите",
    "ответьте",
    "посоветуйте",
    "проинформируйте",
)

# Requests (word forms): «прошу», «помогите», «примите меры».
REQUEST_FORMS: tuple[str, ...] = (
    "прошу",
    "просим",
    "просьба",
    "помогите",
    "помогите пожалуйста",
    "разберитесь",
    "примите меры",
    "принять меры",
    "обратите внимание",
    "посодействуйте",
    "проверьте",
    "решите",
)

# Requests in lemma form («нужна помощь» -> «нужный помощь»).
REQUEST_LEMMAS: tuple[str, ...] = (
    "нужный помощь",
    "требоваться помощь",
    "ждать ответ",
)

GRATITUDE_LEMMAS: tuple[str, ...] = (
    "спасибо",
    "спасибочки",
    "благодарить",
    "поблагодарить",
    "благодарность",
    "благодарный",
    "признательный",
    "молодец",
    "низкий поклон",
    "респект",
)

# A message made only of these symbols is a reaction of approval or thanks («👍»,
# «❤️❤️», «🙏», «+», «)))»): it needs no answer. Other emoji alone («😡», «🤔») stay
# "other": they may be the start of a complaint, an operator should look.
REACTION_SYMBOLS: frozenset[str] = frozenset(
    "👍👌👏🙏🤝💪✊✌"  # approval, thanks
    "❤♥💖💗💓💕💞💘💝🧡💛💚💙💜🤍🤎🫶😍🥰😘"  # hearts, love
    "💐🌹🌷🌸🌺🌻🎉🎊🔥✨⭐🌟💯✅☺🙂😊😀😃😄😁🤗"  # flowers, festive, smiles
    "+)"  # «+» (agree), «)))» (the Russian smile)
)
# Characters that only modify an emoji or separate reactions: variation selectors,
# the zero-width joiner, skin tones, spaces and end punctuation.
REACTION_IGNORED: frozenset[str] = frozenset(
    "\ufe0e\ufe0f\u200d\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff !.,"
)
# Attachment types that carry no content to check: a sticker (and an animated one)
# alone is a reaction, unlike a photo or a document sent without words.
STICKER_ATTACHMENTS: frozenset[str] = frozenset({"sticker", "animated_sticker"})

# A message made only of these (plus address words) is a bare greeting.
GREETING_LEMMAS: tuple[str, ...] = (
    "здравствуйте",
    "здравствуй",
    "добрый день",
    "добрый утро",
    "добрый вечер",
    "добрый время сутки",
    "добрый ночь",
    "привет",
    "приветствовать",
    "уважаемый",
    "администрация",
)
