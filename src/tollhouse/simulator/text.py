"""The simulated model's words: deterministic generated text and scripted replies.

Rule: an answer is a pure function of the config's `seed` and a digest of the conversation
(system prompt and messages; not `max_tokens`, `stream` or the model), so the same request
gets the same text, streamed or not. Generated text is English-looking sentences built from
a few fixed shapes and a fixed vocabulary, about `reply_tokens` tokens long (±20% fixed per
request, then to the end of a sentence), with a paragraph break every few sentences.

A scripted reply (`ScriptRule`) wins over generated text: the first rule whose regex
`re.search`-matches the text of the latest user turn (its text blocks and tool results)
supplies the reply verbatim. Both are then cut by stop sequences and `max_tokens` like any
answer.

Token counts always follow `tollhouse.tokens.estimate.text_tokens` (one token per 4 UTF-8
bytes), so `truncate_to_tokens(text, n)` of a longer text has exactly n tokens.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from tollhouse.simulator.config import ScriptRule


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NOUNS = _words(
    "request response model gateway token stream answer question system user message "
    "service limit budget cache route provider error policy config key team project record "
    "metric alert window prefix prompt context tool result value schema version rule plan "
    "path step change option state detail reason example queue ledger deployment client"
)
VERBS = _words(
    "sends reads returns checks counts writes measures routes caches answers handles keeps "
    "updates follows limits records shapes reaches relays explains needs uses tracks"
)
ADJECTIVES = _words(
    "small large fast slow new clear simple useful careful stable local remote final first "
    "next same other whole shared single default current"
)
ADVERBS = _words("quickly carefully clearly safely simply directly gradually reliably often")
PREPOSITIONS = _words("in on for with from into over after before between through about")
DETERMINERS = _words("the a each every one this that")
VOCABULARY = (*NOUNS, *VERBS, *ADJECTIVES, *ADVERBS, *PREPOSITIONS, *DETERMINERS)

# Sentence shapes: D determiner, A adjective, N noun, V verb, R adverb, P preposition.
_SHAPES = (
    "D A N V D N P D N",
    "D N R V D A N",
    "P D N , D N V D N",
    "D N V D A N P D N",
    "D A N R V D N , P D A N",
    "D N V D N",
)
_CLASSES = {
    "D": DETERMINERS,
    "A": ADJECTIVES,
    "N": NOUNS,
    "V": VERBS,
    "R": ADVERBS,
    "P": PREPOSITIONS,
}
THINKING_OPENER = "Let me think about this step by step."
_SENTENCES_PER_PARAGRAPH = (2, 4)


def conversation_digest(seed: int, *parts: Any) -> int:
    """A stable 64-bit key of the conversation (same across processes and runs)."""
    raw = orjson.dumps(parts)
    digest = hashlib.blake2b(raw, digest_size=8, key=seed.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


def answer_rng(digest: int, purpose: str, index: int = 0) -> random.Random:
    """An RNG for one purpose (text, thinking, tool input...) of one answer choice."""
    return random.Random(f"{digest}:{purpose}:{index}")


def generate_text(rng: random.Random, typical_tokens: int, opener: str = "") -> str:
    """Sentences of about `typical_tokens` tokens (±20% decided by `rng`, then to the end of
    the sentence that reaches it)."""
    target_chars = max(4, round(typical_tokens * rng.uniform(0.8, 1.2)) * 4)
    out: list[str] = [opener] if opener else []
    size = len(opener)
    sentences_left = rng.randint(*_SENTENCES_PER_PARAGRAPH)
    while size < target_chars:
        if out:
            sep = " "
            if sentences_left == 0:
                sep = "\n\n"
                sentences_left = rng.randint(*_SENTENCES_PER_PARAGRAPH)
            out.append(sep)
            size += len(sep)
        sentence = _sentence(rng)
        out.append(sentence)
        size += len(sentence)
        sentences_left -= 1
    return "".join(out)


def _sentence(rng: random.Random) -> str:
    words: list[str] = []
    for slot in rng.choice(_SHAPES).split():
        if slot == ",":
            words[-1] += ","
        else:
            word = rng.choice(_CLASSES[slot])
            if words and words[-1] == "a" and word[0] in "aeiou":
                words[-1] = "an"
            words.append(word)
    return " ".join(words).capitalize() + "."


def thinking_signature(thinking: str, digest: int) -> str:
    """An opaque, stable signature for a thinking block, shaped like the real ones."""
    mac = hashlib.blake2b(thinking.encode(), digest_size=64, key=digest.to_bytes(8, "little"))
    return base64.b64encode(b"\x12" + mac.digest() + mac.digest()[::-1]).decode()


def match_script(rules: Sequence[ScriptRule], latest_user_text: str) -> ScriptRule | None:
    for rule in rules:
        if rule.regex.search(latest_user_text):
            return rule
    return None


def truncate_to_tokens(text: str, tokens: int) -> str:
    """The longest prefix of `text` (whole characters) of at most `tokens` tokens."""
    limit = tokens * 4
    if text.isascii():
        return text[:limit]
    return text.encode()[:limit].decode(errors="ignore")


def cut_at_stop_sequence(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """`text` up to the earliest stop sequence, and that sequence (None when none occurs)."""
    best = len(text)
    found: str | None = None
    for stop in stops:
        at = text.find(stop) if stop else -1
        if 0 <= at < best:
            best, found = at, stop
    return text[:best], found


def stream_pieces(text: str, size: int = 12) -> Iterator[str]:
    """`text` cut into deltas of a few tokens each, at spaces when there are any; cut as
    they are asked for, so a long answer's stream never holds all its pieces at once."""
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = text.find(" ", start + size)
        end = end_of_text if end < 0 else end + 1
        end = min(end, start + 4 * size)
        yield text[start:end]
        start = end
