"""The PII scrubber: what is replaced, what is left alone, and how values are walked.

The corpus files hold most cases, one a line, so a new false positive or miss found in the
field becomes a one-line addition: `corpus/positives.txt` marks each finding with «…» and
`corpus/negatives.txt` lists text that must come out unchanged.
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.scaling import LINEAR_GROWTH_LIMIT, growth

from tollhouse.privacy import PiiMatch, find_pii, scrub_text, scrub_value
from tollhouse.privacy.pii_checks import iban_valid, looks_like_credential, luhn_valid, ssn_valid

CORPUS = Path(__file__).parent / "corpus"
KINDS = {"EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET"}


def corpus_lines(name: str) -> list[tuple[int, str]]:
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    return [
        (number, line)
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.startswith("#")
    ]


@dataclass(frozen=True)
class Positive:
    kind: str
    text: str
    expected: str


def positive(line: str) -> Positive:
    kind, marked = line.split("\t", 1)
    assert kind in KINDS, f"unknown kind {kind!r}"
    assert "«" in marked, "a positive case marks its finding with «…»"
    return Positive(
        kind=kind,
        text=marked.replace("«", "").replace("»", ""),
        expected=re.sub("«[^»]*»", f"[{kind}]", marked),
    )


POSITIVES = [
    pytest.param(positive(line), id=f"L{number}-{line.split(chr(9))[0]}")
    for number, line in corpus_lines("positives.txt")
]
NEGATIVES = [pytest.param(line, id=f"L{number}") for number, line in corpus_lines("negatives.txt")]


# ---- the corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", POSITIVES)
def test_positive_is_replaced_by_its_placeholder_and_nothing_else_changes(case: Positive) -> None:
    assert scrub_text(case.text) == case.expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative_comes_out_unchanged(text: str) -> None:
    assert scrub_text(text) == text


@pytest.mark.parametrize("case", POSITIVES)
def test_scrubbed_text_has_nothing_left_to_scrub(case: Positive) -> None:
    scrubbed = scrub_text(case.text)
    assert scrub_text(scrubbed) == scrubbed


# ---- scrub_text and find_pii -----------------------------------------------------------------


def test_text_without_candidates_is_returned_as_the_same_object() -> None:
    text = "Please rewrite the following paragraph so that it reads more naturally."
    assert scrub_text(text) is text


def test_placeholder_keeps_the_sentence_readable() -> None:
    assert scrub_text("mail me at jane@example.com, thanks") == "mail me at [EMAIL], thanks"


def test_sixteen_digits_failing_luhn_are_not_a_card() -> None:
    assert find_pii("ref 4111 1111 1111 1112") == []


def test_card_number_is_reported_once_as_a_card_not_also_as_a_phone() -> None:
    assert find_pii("call 4111 1111 1111 1111 now") == [PiiMatch("CARD", 5, 24)]


def test_iban_wins_over_a_card_shaped_run_inside_it() -> None:
    assert [match.kind for match in find_pii("DE89 3704 0044 0532 0130 00")] == ["IBAN"]


def test_key_in_a_url_user_part_is_a_secret_not_an_email() -> None:
    text = "https://ghp_U8JZpDE0iGXlD6gNCFbaEPFjbD0kH8Oool8D@github.com/acme/app.git"
    assert scrub_text(text) == "https://[SECRET]@github.com/acme/app.git"


def test_findings_are_in_order_with_exact_spans() -> None:
    text = "ip 10.0.0.1, mail a@b.co, ssn 123-45-6789"
    assert find_pii(text) == [
        PiiMatch("IP", 3, 11),
        PiiMatch("EMAIL", 18, 24),
        PiiMatch("SSN", 30, 41),
    ]


def test_key_name_stays_visible_when_its_value_is_scrubbed() -> None:
    assert scrub_text('{"api_key": "Zx81kQ7pL2vB9nR4"}') == '{"api_key": "[SECRET]"}'


def test_bearer_token_in_a_curl_command_is_scrubbed_and_the_command_kept() -> None:
    command = (
        "curl https://api.openai.com/v1/chat/completions "
        '-H "Authorization: Bearer sk-proj-Zx81kQ7pL2vB9nR4yT6wE3uI0oP5aS" '
        "-H 'Content-Type: application/json'"
    )
    assert scrub_text(command) == (
        "curl https://api.openai.com/v1/chat/completions "
        '-H "Authorization: Bearer [SECRET]" '
        "-H 'Content-Type: application/json'"
    )


def test_escapes_of_a_serialized_json_log_line_are_kept() -> None:
    line = r'{"msg": "from:\njane@example.com\tcard 4111111111111111"}'
    assert scrub_text(line) == r'{"msg": "from:\n[EMAIL]\tcard [CARD]"}'


@pytest.mark.parametrize(
    "text",
    [
        "1" * 100_000,
        "1234 " * 20_000,
        ":" * 100_000,
        "a" * 100_000 + "@",
        "token=" * 20_000,
        "authorization:" * 10_000,
        "eyJ" * 30_000,
        "sk-" * 30_000,
        "4111111111111111 " * 5_000,
    ],
    ids=lambda text: f"{text[:14]!r}x{len(text)}",
)
def test_pathological_input_of_100_kb_is_scrubbed_in_well_under_a_second(text: str) -> None:
    # Each of these once took seconds to minutes: a pattern read to the end of the text from
    # every occurrence of its prefix. Linear time keeps them in milliseconds.
    started = time.perf_counter()
    scrub_text(text)
    assert time.perf_counter() - started < 1.0


# Repeated units of every kind of candidate, and of near-misses that each detector rejects.
REPEATED_UNITS = [
    "1", "1234 ", ":", "a", "token=", "authorization:", "eyJ", "sk-", "4111111111111111 ",
    "1.1.1.1 ", "11.11.11.11.", "+1 555 123 4567 ", "555-123-4567-", "(555) 123-4567 ",
    "020 7946 0958 ", "123-45-6789 ", "DE89 3704 0044 0532 0130 00 ", "a@b.co ", "::1 ",
    "1:2:3:4:5:6:7:8 ", "Bearer abcdefgh1234 ", "x://u:p@h ", "password: ab12cd34 ",
]  # fmt: skip


@pytest.mark.parametrize("unit", REPEATED_UNITS)
def test_scrubbing_takes_time_linear_in_the_text(unit: str) -> None:
    def text(size: int) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    assert growth(scrub_text, text, 25_000) < LINEAR_GROWTH_LIMIT


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 .-+()@:abcdefxyzDEGBsk_=\\n\"'", max_size=200))
def test_findings_never_overlap_and_stay_inside_the_text(text: str) -> None:
    matches = find_pii(text)
    assert all(0 <= match.start < match.end <= len(text) for match in matches)
    assert all(left.end <= right.start for left, right in itertools.pairwise(matches))


# ---- scrub_value -----------------------------------------------------------------------------


def anthropic_request() -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "temperature": 0.2,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "You help jane.doe@example.com with billing.",
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "messages": [
            {"role": "user", "content": "My card is 4111 1111 1111 1111, call +44 20 7946 0958."},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look that up."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A09q90qw90lq917835lq9",
                        "name": "lookup_account",
                        "input": {"email": "jane.doe@example.com", "limit": 5},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                        "content": [{"type": "text", "text": "IBAN DE89370400440532013000"}],
                        "is_error": False,
                    }
                ],
            },
        ],
        "metadata": {"user_id": "jane.doe@example.com"},
        "stop_sequences": ["\n\nHuman:"],
    }


def test_scrub_value_scrubs_every_string_of_a_nested_messages_payload() -> None:
    expected = anthropic_request()
    expected["system"][0]["text"] = "You help [EMAIL] with billing."
    expected["messages"][0]["content"] = "My card is [CARD], call [PHONE]."
    expected["messages"][1]["content"][1]["input"]["email"] = "[EMAIL]"
    expected["messages"][2]["content"][0]["content"][0]["text"] = "IBAN [IBAN]"
    expected["metadata"]["user_id"] = "[EMAIL]"
    assert scrub_value(anthropic_request()) == expected


def test_scrub_value_leaves_its_input_untouched_and_returns_new_containers() -> None:
    original = anthropic_request()
    before = copy.deepcopy(original)
    scrubbed = scrub_value(original)
    assert original == before
    assert scrubbed is not original
    assert scrubbed["messages"] is not original["messages"]
    assert scrubbed["system"][0] is not original["system"][0]


def test_scrub_value_keeps_keys_numbers_booleans_and_none() -> None:
    value = {"jane@example.com": 4111111111111111, "ok": True, "none": None, "ratio": 0.5}
    assert scrub_value(value) == value


def test_scrub_value_keeps_tuples_as_tuples() -> None:
    assert scrub_value(("a@b.co", ("10.0.0.1", 3))) == ("[EMAIL]", ("[IP]", 3))


def test_scrub_value_of_a_plain_string_is_scrub_text() -> None:
    assert scrub_value("ssn 123-45-6789") == "ssn [SSN]"


def test_scrub_value_handles_nesting_deeper_than_the_recursion_limit() -> None:
    value: Any = "a@b.co"
    for _ in range(5_000):
        value = [value]
    scrubbed = scrub_value(value)
    for _ in range(5_000):
        (scrubbed,) = scrubbed
    assert scrubbed == "[EMAIL]"


# ---- the checks behind the patterns ----------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5555555555554444", "378282246310005", "6011000990139424"]
)
def test_luhn_accepts_documented_test_card_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "5555555555555555", "1234567812345678"])
def test_luhn_rejects_numbers_with_a_wrong_check_digit(number: str) -> None:
    assert not luhn_valid(number)


def test_iban_needs_its_countrys_length() -> None:
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("DE8937040044053201300")


def test_iban_needs_the_mod_97_checksum() -> None:
    assert not iban_valid("DE89370400440532013001")


@pytest.mark.parametrize(
    "ssn",
    ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"],
)
def test_ssn_never_issued_ranges_are_rejected(ssn: str) -> None:
    assert not ssn_valid(ssn)


@pytest.mark.parametrize("value", ["abcdef123456", "dXNlcjpwYXNzd29yZGZvcnRoZWRheQ", "S3cure!Pass"])
def test_machine_made_values_look_like_credentials(value: str) -> None:
    assert looks_like_credential(value)


@pytest.mark.parametrize(
    "value", ["hunter2", "required", "os.environ", "YOUR_API_KEY_HERE", "getAccessTokenFromCache"]
)
def test_words_placeholders_and_code_do_not_look_like_credentials(value: str) -> None:
    assert not looks_like_credential(value)
