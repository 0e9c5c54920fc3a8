"""A seeded, offline sentiment data set for quick starts, smoke tests and benchmarks.

The reviews are synthetic: short English-like sentences built from templates,
not real user text. They carry enough structure that a tiny transformer learns
them clearly above chance but not perfectly:

- polar words (``great``, ``awful``, ``loved``, ``hated``) decide the label;
- negation flips a clause's polarity (``not good`` is negative), so word order
  matters and a bag of words is not enough;
- a contrast clause (``the plot was dull but the acting was superb``) carries
  the opposite polarity before ``but``: the clause after it wins;
- intensifiers, neutral adjectives and filler sentences are distractors;
- a small fraction of labels (``label_noise``, 5% by default) is flipped, so the
  best reachable accuracy is about 95%.

With ``classes`` above 2 it is a topic task instead (labels ``film``, ``book``,
``music``, ...): each review talks about its topic's things, with the same
sentiment phrasing (now a distractor), filler sentences and label noise.
"""

from __future__ import annotations

import random

LABELS: tuple[str, str] = ("negative", "positive")
# How often a clause is negated, a review opens with a contrast clause, and how many filler sentences it gets.
_NEGATION = 0.2
_CONTRAST = 0.2
_FILLER_COUNTS = (0, 0, 1)

_NOUNS = (
    "movie", "film", "plot", "acting", "soundtrack", "script", "cast", "ending",
    "story", "direction", "dialogue", "pacing", "camera work", "lead actor", "finale",
)  # fmt: skip
_ADJECTIVES = {
    1: ("good", "great", "excellent", "wonderful", "superb", "delightful", "brilliant",
        "enjoyable", "charming", "memorable", "moving", "fantastic", "clever", "gripping"),
    -1: ("bad", "awful", "terrible", "boring", "dull", "dreadful", "poor", "weak",
         "tedious", "disappointing", "mediocre", "clumsy", "predictable", "forgettable"),
}  # fmt: skip
_VERBS = {  # (past tense, base form after "did not")
    1: (("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"), ("adored", "adore")),
    -1: (("hated", "hate"), ("disliked", "dislike"), ("regretted", "regret"), ("resented", "resent")),
}
_NEUTRAL = (
    "long", "short", "loud", "quiet", "old", "new", "french", "animated", "colourful",
    "slow", "familiar", "unusual", "recent", "typical",
)  # fmt: skip
_INTENSIFIERS = ("very", "really", "extremely", "quite", "truly", "incredibly", "rather", "so")
_FILLERS = (
    "i watched it on a sunday.",
    "my friend recommended it to me.",
    "it runs for about two hours.",
    "the theater was crowded.",
    "i saw it with my family.",
    "it was released last year.",
    "the trailer came out in spring.",
    "we bought popcorn before it started.",
    "it is based on a novel.",
    "there is a short scene after the credits.",
)


def _adjective(rng: random.Random, polarity: int) -> str:
    """An adjective phrase of the given polarity, possibly a negated opposite."""
    words = []
    negate = rng.random() < _NEGATION
    if negate:
        words.append(rng.choice(("not", "never", "not at all")) if rng.random() < 0.3 else "not")
    elif rng.random() < 0.4:
        words.append(rng.choice(_INTENSIFIERS))
    words.append(rng.choice(_ADJECTIVES[-polarity if negate else polarity]))
    return " ".join(words)


def _clause(rng: random.Random, polarity: int) -> str:
    """One clause (no final period) whose meaning has the given polarity."""
    noun = rng.choice(_NOUNS)
    if rng.random() < 0.4:
        noun = f"{rng.choice(_NEUTRAL)} {noun}"
    kind = rng.random()
    if kind < 0.55:
        return f"the {noun} was {_adjective(rng, polarity)}"
    if kind < 0.85:
        negate = rng.random() < _NEGATION
        past, base = rng.choice(_VERBS[-polarity if negate else polarity])
        return f"i did not {base} the {noun}" if negate else f"i {past} the {noun}"
    negate = polarity < 0
    return "i would not recommend it" if negate else rng.choice(("i would recommend it", "i would watch it again"))


def _review(rng: random.Random, polarity: int) -> str:
    """A review of one to three sentences whose overall polarity is ``polarity``."""
    if rng.random() < _CONTRAST:
        main = f"{_clause(rng, -polarity)} but {_clause(rng, polarity)}."
    else:
        main = f"{_clause(rng, polarity)}."
    sentences = [main]
    if rng.random() < 0.3:
        sentences.append(f"{_clause(rng, polarity)}.")
    for _ in range(rng.choice(_FILLER_COUNTS)):
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(_FILLERS))
    return " ".join(sentences)


def generate(n: int, seed: int = 42, label_noise: float = 0.05, classes: int = 2) -> list[dict[str, str]]:
    """Generate ``n`` synthetic reviews: labels ``negative``/``positive``, or ``classes`` topics.

    The output is deterministic given its arguments and balanced to within one
    row per class (before label noise).

    Args:
        n: Number of reviews.
        seed: Seed of the generator.
        label_noise: Fraction of rows whose label is flipped (sentiment) or drawn at random (topics).
        classes: 2 for the sentiment task; 3 to 6 for a topic task (:data:`TOPICS`).

    Returns:
        Rows as ``{"text": ..., "label": ...}`` dicts.
    """
    if classes != 2:
        return _topics(n, seed, label_noise, classes)
    rng = random.Random(seed)
    polarities = [1 if i % 2 else -1 for i in range(n)]
    rng.shuffle(polarities)
    rows = []
    for polarity in polarities:
        text = _review(rng, polarity)
        label = -polarity if rng.random() < label_noise else polarity
        rows.append({"text": text, "label": LABELS[label > 0]})
    return rows


# The topic task's classes and the things each one talks about.
TOPICS: dict[str, tuple[str, ...]] = {
    "film": ("movie", "film", "plot", "acting", "cast", "director", "screenplay", "trailer"),
    "book": ("novel", "book", "chapter", "author", "prose", "paperback", "narrator", "epilogue"),
    "music": ("album", "song", "chorus", "singer", "guitar", "melody", "lyrics", "drummer"),
    "game": ("game", "level", "controller", "boss fight", "multiplayer", "quest", "console", "save system"),
    "food": ("restaurant", "dish", "dessert", "chef", "menu", "soup", "waiter", "sauce"),
    "travel": ("hotel", "flight", "beach", "tour guide", "museum", "train ride", "island", "harbour"),
}


def _topic_review(rng: random.Random, topic: str) -> str:
    polarity = rng.choice((1, -1))
    sentences = []
    for _ in range(rng.choice((1, 1, 2))):
        thing = rng.choice(TOPICS[topic])
        if rng.random() < 0.4:
            thing = f"{rng.choice(_NEUTRAL)} {thing}"
        sentences.append(f"the {thing} was {_adjective(rng, polarity)}.")
    for _ in range(rng.choice(_FILLER_COUNTS)):
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(_FILLERS[:3]))
    return " ".join(sentences)


def _topics(n: int, seed: int, label_noise: float, classes: int) -> list[dict[str, str]]:
    if not 2 < classes <= len(TOPICS):
        raise ValueError(f"classes must be 2 to {len(TOPICS)} (got {classes})")
    names = list(TOPICS)[:classes]
    rng = random.Random(seed)
    topics = [names[i % classes] for i in range(n)]
    rng.shuffle(topics)
    rows = []
    for topic in topics:
        text = _topic_review(rng, topic)
        label = rng.choice(names) if rng.random() < label_noise else topic
        rows.append({"text": text, "label": label})
    return rows
