"""Known prompt-injection patterns, by name: what untrusted content is scanned for
(guardrails/untrusted.py). Each targets the imperative form an injection takes, aimed at
the model ("ignore the previous instructions", "you are now...", a forged role marker),
so that text which only mentions the same words reads as benign; the corpus in
tests/stages/shape/data/injection_corpus.yaml measures both sides."""

from __future__ import annotations

import re

_IGNORE_VERBS = r"(?:ignore|disregard|forget|override|bypass|skip|abandon|drop)"
_PRIOR = r"(?:previous|prior|above|earlier|preceding|original|initial|system|all|any|your)"
_ORDERS = r"(?:instructions?|prompts?|rules|directions?|guidelines|guardrails|constraints|orders)"

INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        rf"\b{_IGNORE_VERBS}\s+(?:all\s+|any\s+|the\s+|of\s+)*{_PRIOR}\b(?:\s+\w+){{0,2}}\s+{_ORDERS}\b",
        re.IGNORECASE,
    ),
    "new_instructions": re.compile(
        r"\b(?:new|updated|revised|real|actual|true)\s+(?:system\s+)?instructions?\s*(?::|-|are\b|follow\b)",
        re.IGNORECASE,
    ),
    "role_override": re.compile(
        r"\byou\s+are\s+now\s+(?:an?\s+|in\s+)?(?:DAN\b|unrestricted|unfiltered|uncensored|"
        r"jailbroken|evil|no\s+longer|free\s+(?:from|of)|\w+,\s+an?\s+(?:AI|assistant|model))"
        r"|\bfrom\s+now\s+on,?\s+(?:you|respond|answer|act)\b"
        r"|\b(?:enter|enable|activate)\s+(?:developer|god|jailbreak|DAN)\s+mode\b"
        r"|\bpretend\s+(?:that\s+)?you\s+(?:have\s+no|are\s+not\s+bound)",
        re.IGNORECASE,
    ),
    "prompt_exfiltration": re.compile(
        r"\b(?:reveal|print|show|repeat|output|disclose|leak|tell\s+me)\s+(?:\w+\s+){0,3}"
        r"(?:system\s+prompt|hidden\s+(?:prompt|instructions)|initial\s+instructions|"
        r"instructions\s+above|developer\s+message)",
        re.IGNORECASE,
    ),
    "forged_role": re.compile(
        r"(?:^|\n)\s*(?:#+\s*)?(?:system|assistant)\s*:\s*\S"
        r"|<\|im_start\|>|<\|im_end\|>|\[/?INST\]|<</?SYS>>|</?system>"
        r"|\n\n(?:Human|Assistant):",
        re.IGNORECASE,
    ),
    "hidden_action": re.compile(
        r"\b(?:do\s+not|don't|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|alert(?:ing)?|"
        r"notify(?:ing)?|mention(?:ing)?\s+(?:this\s+)?to)\s+the\s+user\b",
        re.IGNORECASE,
    ),
    "exfiltrate_data": re.compile(
        r"\b(?:send|post|forward|upload|email|transmit|exfiltrate)\s+(?:[\w']+\s+){0,4}"
        r"(?:api\s+keys?|passwords?|credentials|secrets?|tokens?|conversation|chat\s+history|"
        r"system\s+prompt)\b[^.\n]{0,60}(?:https?://|\b\S+@\S+\.\w+)",
        re.IGNORECASE,
    ),
    "delimiter_spoofing": re.compile(r"</?\s*untrusted_content", re.IGNORECASE),
}


# Words without one of which a pattern cannot match (lower case): a pattern runs only on a
# text that holds one, since most texts hold none and a substring test costs far less
# than a case-insensitive search.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "ignore_instructions": (
        "ignore",
        "disregard",
        "forget",
        "override",
        "bypass",
        "skip",
        "abandon",
        "drop",
    ),
    "new_instructions": ("instruction",),
    "role_override": ("you are now", "from now on", "mode", "pretend"),
    "prompt_exfiltration": ("prompt", "instructions", "developer message"),
    "forged_role": ("system", "assistant", "<|im_", "inst]", "<<sys", "human:"),
    "hidden_action": ("the user",),
    "exfiltrate_data": ("http", "@"),
    "delimiter_spoofing": ("untrusted_content",),
}


def injections_in(text: str) -> list[str]:
    """The names of the patterns `text` matches, in the order above."""
    lowered = text.lower()
    return [
        name
        for name, pattern in INJECTION_PATTERNS.items()
        if any(word in lowered for word in _TRIGGERS[name]) and pattern.search(text)
    ]
