"""Scrub personal data and credentials from text before it is written anywhere.

Every prompt, answer, error message and log line passes through `scrub_text` (or
`scrub_value` for a decoded JSON body) before it reaches a log or the call ledger, so that
what we keep for cost and debugging is not a store of our users' customers' data. It runs
offline, with compiled regular expressions and a few checksums, on every ledger record.

Each finding is replaced by a typed placeholder so the text stays readable
("mail me at [EMAIL]"):

- [EMAIL]  addresses with plus-addressing and subdomains (`jane+news@mail.example.co.uk`).
- [PHONE]  international numbers written with `+` and a country code, 8 to 15 digits in any
           usual grouping (`+44 20 7946 0958`, `+33 1 23 45 67 89`, `+1 (555) 123-4567`,
           `+14155552671`); North American numbers with an area code and separators
           (`(555) 123-4567`, `555-123-4567`, `555.123.4567`, `1-555-123-4567`); national
           numbers with a leading trunk 0 and 10 or 11 digits in evenly separated groups
           (`020 7946 0958`, `01 23 45 67 89`).
- [CARD]   13 to 19 digits, unspaced or in the printed groupings (4-4-4-4…, 4-6-5), starting
           with 2-6 (the issuer ranges in use) and passing the Luhn check.
- [IBAN]   country code + check digits + account, any case, with or without spaces, with the
           country's registered length and a valid mod-97 checksum.
- [SSN]    US social security numbers ddd-dd-dddd outside the never-issued ranges (area 000,
           666, 9xx; group 00; serial 0000).
- [IP]     IPv4 dotted quads with every octet 0-255 and no leading zeros (so `1.2.3.4` is an
           address, while `v1.2.3.4`, `1.2.3.4.5` and `1.2.3.256` are not); IPv6 in full or
           compressed form, with an embedded IPv4 tail too (`::1`, `2001:db8::8a2e:370:7334`,
           `::ffff:192.0.2.1`).
- [SECRET] keys by their issuer's prefix: `sk-…` (Anthropic `sk-ant-`, OpenAI `sk-proj-`),
           AWS `AKIA…`/`ASIA…`, GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`,
           Slack `xoxb-`/`xoxp-`/`xoxa-`/`xoxs-`/`xoxr-`, JWTs `eyJ….….…`; the credential of a
           `Bearer` token or an `Authorization:` header value (the scheme word stays
           visible); the password of a `scheme://user:password@host` URL; and machine-made
           values after `api_key`, `access_key`, `secret_key`, `secret`, `token`, `password`,
           `passwd`, `pwd` and `=` or `:` (quoted, JSON and escaped-JSON forms included; the
           key name stays visible).

A credential wins over anything it overlaps (a key in a URL's user part is a key, not an
e-mail address); otherwise the longest finding wins, then the more specific kind (a card
number is not also reported as a phone number).

Known limits, by design or not yet:

- Names, street addresses, dates of birth and free-form identifiers are not detected: that
  needs a language model, and this must run offline in microseconds.
- Phone numbers need a `+` country code or separators: a bare `5551234567` is not scrubbed
  (it cannot be told from an id or a timestamp), nor are 7-digit local numbers (`555-1234`).
  A `+` number directly followed by more digit groups may take them in, up to 15 digits.
- Numbers are only looked for around a run of 7+ digits, spaces, dots and dashes, which
  every supported format holds; a phone written `+49 (0) 30 (1234) 5678` has none and is
  missed. A card, SSN or phone-shaped part of a longer run of short digit groups
  (`DE89 3704 0044 0532 0130 01`, a mistyped IBAN) is not reported on its own.
- National ids other than US SSNs (written with dashes) are not detected.
- Card numbers from issuers outside 2-6 (e.g. UATP `1…`) are not detected; a number that
  happens to pass Luhn in a card grouping is scrubbed (1 in 10 random candidates).
- Every valid dotted quad is an address, loopback and private ranges included, so four-part
  versions and section numbers with parts up to 255 (`1.0.0.0`, `RFC 9110 8.4.1.3`) become
  [IP]; written `v1.0.0.0` or `§8.4.1.3` they are kept.
- Compressed IPv6 forms need one group of 3+ hex digits (or be exactly `::1`), so that code
  such as `a[1::2]` and `Foo::Bar` is left alone; `[fe80::1]` is scrubbed, `[1::2]` is not.
- Values after `password=`/`token=`… are scrubbed only when they look machine-made (8+
  characters mixing letters and digits, or 20+ characters evenly mixing upper and lower
  case): `password=hunter2`, `token: required` and `token = b64encode(raw)` are kept, while
  an identifier such as `token = utf8_value` is scrubbed. Such a value ends at whitespace,
  a quote, `&`, `,`, `;` or a bracket, so a password holding one is only partly seen.
- An e-mail-shaped name whose top-level domain is a file extension (`icon@2x.png`) is kept.
- Of serialized JSON, only the escapes `\\n`, `\\r`, `\\t` are understood.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tollhouse.privacy.pii_checks import (
    IBAN_LENGTHS,
    iban_valid,
    looks_like_credential,
    luhn_valid,
    ssn_valid,
)

PiiKind = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET"]

# When findings of the same length overlap, the one whose check is the stricter wins.
_PRIORITY: dict[PiiKind, int] = {
    "SECRET": 0,
    "CARD": 1,
    "IBAN": 2,
    "SSN": 3,
    "EMAIL": 4,
    "IP": 5,
    "PHONE": 6,
}


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One finding: `text[start:end]` is a `kind`."""

    kind: PiiKind
    start: int
    end: int


def scrub_text(text: str) -> str:
    """`text` with each finding replaced by its placeholder (`[EMAIL]`, `[CARD]`…); the very
    same object when nothing is found, so callers can skip a copy."""
    matches = find_pii(text)
    if not matches:
        return text
    parts: list[str] = []
    position = 0
    for match in matches:
        parts.append(text[position : match.start])
        parts.append(f"[{match.kind}]")
        position = match.end
    parts.append(text[position:])
    return "".join(parts)


def scrub_value(value: Any) -> Any:
    """A copy of a JSON-like value with every string scrubbed at any depth.

    Dict keys are kept as they are (they are field names, not data); numbers, booleans and
    None are returned unchanged; tuples stay tuples. The walk uses an explicit stack, so a
    body nested deeper than Python's recursion limit is scrubbed, not dropped.
    """
    if isinstance(value, str):
        return scrub_text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    tuples: list[tuple[Any, Any]] = []
    while pending:
        parent, slot, original = pending.pop()
        if isinstance(original, str):
            parent[slot] = scrub_text(original)
        elif isinstance(original, dict):
            copy: dict[Any, Any] = dict.fromkeys(original)
            parent[slot] = copy
            pending.extend((copy, key, item) for key, item in original.items())
        elif isinstance(original, list | tuple):
            items: list[Any] = [None] * len(original)
            parent[slot] = items
            if isinstance(original, tuple):
                tuples.append((parent, slot))
            pending.extend((items, index, item) for index, item in enumerate(original))
        else:
            parent[slot] = original
    # Inner tuples were registered after their parents; freezing them first means each
    # parent freezes over its finished children.
    for parent, slot in reversed(tuples):
        parent[slot] = tuple(parent[slot])
    return root[0]


def find_pii(text: str) -> list[PiiMatch]:
    """The findings in `text`, in order and never overlapping."""
    regions = _number_regions(text)
    clues = _clues(text)
    if not regions and not clues:
        return []
    found: list[PiiMatch] = []
    for detector in _DETECTORS:
        if detector.clue == "number":
            for start, end in regions:
                window = max(0, start - detector.reach), min(len(text), end + detector.reach)
                found.extend(_scan(text, detector, *window))
        elif detector.clue in clues:
            found.extend(_scan(text, detector, 0, len(text)))
    return _resolve_overlaps(found)


# ---- candidate patterns --------------------------------------------------------------------
#
# Every pattern starts with a single literal or character class: the regex engine then skips
# ahead to possible starts in C instead of trying the whole pattern at every position, which
# is most of the cost on a 2 KB prompt. Conditions on what precedes a finding are therefore
# written as a look-behind after its first character, or checked when the candidate is
# accepted.


def _token_start(first: str, also: str = "") -> str:
    """`first` (a fixed-width pattern: a character class or a literal prefix) where it starts
    a token: the character before it is no letter, digit, `_` or one of `also` (ending with
    `-` if it holds one), unless it closes a JSON escape (a backslash and `n`, `r` or `t`, in
    serialized text). Checking this inside the pattern also keeps the search linear: a
    repeated prefix (`eyJeyJeyJ…`) is not read to its end from every occurrence."""
    return rf"{first}(?:(?<![0-9A-Za-z_{also}]{first})|(?<=\\[nrt]{first}))"


_NUMBER_END = r"(?![0-9]|[.,-][0-9])"

_EMAIL_DOMAIN = re.compile(
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,63})(?![\w-])"
)
_EMAIL_LOCAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
)

_INTERNATIONAL_PHONE = re.compile(
    _token_start(r"\+", "+")
    + r"[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,7}"
    + _NUMBER_END
)
_NORTH_AMERICAN_PHONE = re.compile(
    r"[2-9][0-9]{2}(?P<sep>[ .-])[0-9]{3}(?P=sep)[0-9]{4}" + _NUMBER_END
)
_NORTH_AMERICAN_PHONE_PARENS = re.compile(r"\([2-9][0-9]{2}\) ?[0-9]{3}[ .-][0-9]{4}" + _NUMBER_END)
_NATIONAL_PHONE = re.compile(
    _token_start("0", ".+-")
    + r"[0-9]{1,4}(?P<sep>[ .-])[0-9]{2,4}(?:(?P=sep)[0-9]{2,4}){1,3}"
    + _NUMBER_END
)

# Unspaced, or in the groupings cards are printed in: 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4.
_CARD = re.compile(
    _token_start("[2-6]", ".,+-") + r"(?:[0-9]{12,18}"
    r"|[0-9]{3}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4}(?:(?P=sep)[0-9]{3})?"
    r"|[0-9]{3}(?P<amex_sep>[ -])[0-9]{6}(?P=amex_sep)[0-9]{4,5})" + _NUMBER_END
)

# Found by its check digits, the first digits of an IBAN, and then read back to the country.
_IBAN = re.compile(
    r"[0-9][0-9](?<=[A-Za-z]{2}[0-9]{2})"
    r"(?:(?<![0-9A-Za-z_][A-Za-z]{2}[0-9]{2})|(?<=\\[nrt][A-Za-z]{2}[0-9]{2}))"
    r"(?: ?[0-9A-Za-z]{4}){2,7}(?: ?[0-9A-Za-z]{1,4})?"
)

_SSN = re.compile(_token_start("[0-9]", ".-") + r"[0-9]{2}-[0-9]{2}-[0-9]{4}" + _NUMBER_END)

_IPV4 = re.compile(_token_start("[0-9]", ".§") + r"[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])")

# Found from its first colon; the group before it is read back when the candidate is checked.
_IPV6 = re.compile(
    r":(?:[0-9A-Fa-f]{0,4}:){1,6}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})"
    r"(?![\w:]|\.[0-9])"
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

# One pattern per issuer, each starting with its literal prefix, which the regex engine finds
# as fast as a substring search.
_OPENAI_STYLE_KEY = re.compile(_token_start("sk-", "-") + r"[A-Za-z0-9_-]{20,}")  # sk-ant-…
_AWS_ACCESS_KEY_ID = re.compile(_token_start("A[KS]IA") + r"[A-Z0-9]{16}(?![A-Za-z0-9])")
_GITHUB_TOKEN = re.compile(_token_start("gh[pousr]_") + r"[A-Za-z0-9]{36,}")
_GITHUB_FINE_GRAINED_TOKEN = re.compile(_token_start("github_pat_") + r"[A-Za-z0-9_]{22,}")
_SLACK_TOKEN = re.compile(_token_start("xox[abprs]-") + r"[A-Za-z0-9-]{10,}")
_JWT = re.compile(
    _token_start("eyJ", "-") + r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
)
_KEY_PREFIXES = ("sk-", "AKIA", "ASIA", "gh", "github_pat_", "xox", "eyJ")

_QUOTE = r"""(?:\\?["'])?"""

_BEARER = re.compile(_token_start("[Bb]") + r"(?i:earer)[ \t]+(?P<secret>[A-Za-z0-9._~+/=-]{8,})")

_AUTHORIZATION = re.compile(
    r"[Aa](?i:uthorization)" + _QUOTE + r"[ \t]*[:=][ \t]*" + _QUOTE
    + r"(?:(?P<scheme>(?i:bearer|basic|token|digest|apikey))[ \t]+)?"
    + r"(?P<secret>[^\s\"'\\,;]{4,})"
)  # fmt: skip

# api_key, apikey, api-key, access_key, private_key, secret_key, secret, token, password,
# passwd, pwd, in any case; the first letter is matched on its own so the pattern starts
# with a character class (see above), then each word's tail is chosen by that letter.
_ASSIGNED_SECRET = re.compile(
    r"[AaPpSsTt](?i:"
    r"(?<=a)(?:pi[_-]?|ccess[_-]?)key"
    r"|(?<=p)(?:ass(?:wor)?d|wd|rivate[_-]?key)"
    r"|(?<=s)ecret(?:[_-]?key)?"
    r"|(?<=t)oken)"
    + _QUOTE + r"[ \t]*[:=][ \t]*" + _QUOTE
    + r"(?P<secret>[^\s\"'\\&,;<>()\[\]{}]{8,})"
)  # fmt: skip
# The password of `scheme://user:password@host`, as in database and broker URLs.
_URL_PASSWORD = re.compile(r"://[^\s/?#@:]*:(?P<secret>[^\s/?#@]+)@")

_SECRET_WORD_TAILS = ("key", "token", "secret", "password", "passwd", "pwd")
_ASSIGNMENT_AFTER_WORD = re.compile(r"""[a-z_-]{0,2}(?:\\?["'])?[ \t]*[:=]""")

# At least 7 characters of digits, spaces, dots and dashes, from digit to digit: every card,
# SSN, IPv4 address, phone number and IBAN holds one, and most text holds few.
_NUMBER_CLUSTER = re.compile(r"[0-9][0-9 .-]{5,}[0-9]")
_NON_DIGIT = re.compile(r"[^0-9]")


def _number_regions(text: str) -> list[tuple[int, int]]:
    """The spans of text around number clusters where the number detectors look; clusters
    close to each other share one region, which costs less than a search call each."""
    regions: list[tuple[int, int]] = []
    for cluster in _NUMBER_CLUSTER.finditer(text):
        start, end = cluster.span()
        if regions and start - regions[-1][1] <= _REGION_GAP:
            start = regions.pop()[0]
        regions.append((start, end))
    return regions


_REGION_GAP = 64

Clue = Literal[
    "number", "at", "colons", "key_prefix", "bearer", "authorization", "assignment", "url"
]


def _clues(text: str) -> set[Clue]:
    """Which detectors beyond the number ones can possibly match, from a few substring
    tests: most text pays for these and for the detectors of its clues only."""
    clues: set[Clue] = set()
    if "@" in text:
        clues.add("at")
    if "::" in text or text.count(":") >= 7:
        clues.add("colons")
    if any(prefix in text for prefix in _KEY_PREFIXES):
        clues.add("key_prefix")
    lowered = text.lower()
    if "bearer" in lowered:
        clues.add("bearer")
    if "authorization" in lowered:
        clues.add("authorization")
    if _has_secret_assignment(lowered):
        clues.add("assignment")
    if "://" in text:
        clues.add("url")
    return clues


def _has_secret_assignment(lowered: str) -> bool:
    """Whether a secret-naming word (`api_key`, `token`, `password`…) is followed by `=` or
    `:`; far cheaper than the case-insensitive pattern that then finds the value."""
    for tail in _SECRET_WORD_TAILS:
        position = lowered.find(tail)
        while position >= 0:
            if _ASSIGNMENT_AFTER_WORD.match(lowered, position + len(tail)):
                return True
            position = lowered.find(tail, position + 1)
    return False


# ---- what makes a candidate a finding ------------------------------------------------------

Span = tuple[int, int]


def _at_token_start(text: str, start: int, also: str = "") -> bool:
    """The check of `_token_start`, for candidates whose start is only known once read."""
    if start == 0:
        return True
    before = text[start - 1]
    if before.isalnum() or before == "_":
        return start >= 2 and text[start - 2] == "\\" and before in "nrt"
    return before not in also


def _continues_digit_groups(text: str, start: int) -> bool:
    """Whether the number at `start` follows a short digit group and a separator, as each
    group after the first does in `DE89 3704 0044 0532 0130 00`: no part of such a run is a
    phone or card number of its own. A long number before (a list of cards) does not count."""
    if start < 2 or text[start - 1] not in " .-" or not text[start - 2].isdigit():
        return False
    group_start = start - 2
    while group_start > 0 and text[group_start - 1].isdigit():
        group_start -= 1
    return start - 1 - group_start <= 4


def _accept_email(match: re.Match[str], text: str) -> Span | None:
    if match.group("tld").lower() in _FILE_EXTENSIONS:
        return None
    at = start = match.start()
    while start > 0 and text[start - 1] in _EMAIL_LOCAL_CHARS:
        start -= 1
    while start < at and not text[start].isalnum():
        start += 1
    # In serialized JSON, `\nuser@…` is a newline and then the address.
    if start > 0 and text[start - 1] == "\\" and text[start] in "nrt":
        start += 1
    return (start, match.end()) if start < at else None


_FILE_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf",
    "js", "ts", "css", "py", "json", "yaml", "yml", "md", "txt", "html", "toml", "lock",
})  # fmt: skip


def _accept_international_phone(match: re.Match[str], text: str) -> Span | None:
    start, end = match.span()
    digits = _digit_count(text[start:end])
    # A longer run is a number followed by other numbers: keep the leading groups.
    while digits > 15:
        end = max(text.rfind(separator, start + 1, end) for separator in " .-(")
        if end <= start:
            return None
        end = start + len(text[start:end].rstrip(" .-"))
        digits = _digit_count(text[start:end])
    return (start, end) if digits >= 8 else None


def _accept_north_american_phone(match: re.Match[str], text: str) -> Span | None:
    start = match.start()
    # A leading trunk 1 (`1-555-123-4567`, `1 (555) 123-4567`, `1(555)…`) belongs to it.
    for trunk in (start - 2, start - 1):
        between = text[trunk + 1 : start]
        separated = between in (" ", ".", "-") or (between == "" and text[start] == "(")
        if trunk >= 0 and text[trunk] == "1" and separated and _phone_starts_at(text, trunk):
            return trunk, match.end()
    return match.span() if _phone_starts_at(text, start) else None


def _phone_starts_at(text: str, start: int) -> bool:
    return _at_token_start(text, start, "+.-") and not _continues_digit_groups(text, start)


def _accept_national_phone(match: re.Match[str], text: str) -> Span | None:
    if _continues_digit_groups(text, match.start()):
        return None
    return match.span() if 10 <= _digit_count(match.group()) <= 11 else None


def _accept_card(match: re.Match[str], text: str) -> Span | None:
    if _continues_digit_groups(text, match.start()):
        return None
    return match.span() if luhn_valid(_NON_DIGIT.sub("", match.group())) else None


def _accept_iban(match: re.Match[str], text: str) -> Span | None:
    # The pattern may run on into a following word; the country's length says where the
    # IBAN really ends.
    start = match.start() - 2
    candidate = text[start : match.end()]
    length = IBAN_LENGTHS.get(candidate[:2].upper())
    if length is None:
        return None
    significant = 0
    for offset, char in enumerate(candidate):
        if char != " ":
            significant += 1
            if significant == length:
                end = start + offset + 1
                break
    else:
        return None
    if end < len(text) and text[end].isalnum():
        return None
    compact = text[start:end].replace(" ", "").upper()
    return (start, end) if iban_valid(compact) else None


def _accept_ssn(match: re.Match[str], text: str) -> Span | None:
    return match.span() if ssn_valid(match.group()) else None


def _accept_ipv4(match: re.Match[str], text: str) -> Span | None:
    octets = match.group().split(".")
    if any(int(octet) > 255 or (len(octet) > 1 and octet[0] == "0") for octet in octets):
        return None
    return match.span()


def _accept_ipv6(match: re.Match[str], text: str) -> Span | None:
    start, end = match.span()
    while start > max(0, match.start() - 4) and text[start - 1] in _HEX_DIGITS:
        start -= 1
    if start == match.start() and not text.startswith("::", start):
        start += 1  # a lone colon before the address separates it: `host:2001:db8::1`
    if not _at_token_start(text, start, "."):
        return None
    candidate = text[start:end]
    if "::" not in candidate and candidate.count(":") != 7:
        return None  # clock times and the like, without paying for a parse
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    # Compressed forms made only of 1-2 digit groups are far more often code (`a[1::2]`,
    # `x::y`) than addresses; the loopback `::1` is the exception worth catching.
    short_groups_only = all(len(group) < 3 for group in re.split(r"[:.]", candidate))
    if "::" in candidate and candidate != "::1" and short_groups_only:
        return None
    return start, end


def _accept_openai_style_key(match: re.Match[str], text: str) -> Span | None:
    # `sk-` also starts slugs (`sk-this-is-a-long-page-name`); a key body is machine-made.
    return match.span() if looks_like_credential(match.group()[3:]) else None


def _accept_aws_access_key_id(match: re.Match[str], text: str) -> Span | None:
    # AWS ids are base32 and hold digits; an upper-case word after AKIA does not.
    return match.span() if any(char.isdigit() for char in match.group()) else None


def _accept_as_found(match: re.Match[str], text: str) -> Span | None:
    return match.span()


def _accept_bearer(match: re.Match[str], text: str) -> Span | None:
    return match.span("secret") if looks_like_credential(match.group("secret")) else None


def _accept_authorization(match: re.Match[str], text: str) -> Span | None:
    # After an explicit scheme the value is a credential whatever it looks like, unless it
    # is a documentation placeholder (`<token>`, `$API_KEY`, `YOUR_KEY`).
    value = match.group("secret")
    if match.group("scheme") is not None:
        return None if _PLACEHOLDER.fullmatch(value) else match.span("secret")
    return match.span("secret") if looks_like_credential(value) else None


_PLACEHOLDER = re.compile(r"[<$%{].*|[A-Z_]+|x+|\*+")


def _accept_url_password(match: re.Match[str], text: str) -> Span | None:
    return match.span("secret")


def _accept_assigned_secret(match: re.Match[str], text: str) -> Span | None:
    value = match.group("secret")
    # `token = b64encode(…)` is code computing a secret, not one.
    is_call = text.startswith("(", match.end())
    if is_call or "://" in value or not looks_like_credential(value):
        return None
    return match.span("secret")


def _digit_count(text: str) -> int:
    return len(_NON_DIGIT.sub("", text))


# ---- running the detectors -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: PiiKind
    clue: Clue
    pattern: re.Pattern[str]
    accept: Callable[[re.Match[str], str], Span | None]
    # For "number" detectors: how far around a number cluster a finding may reach (at least
    # 2, for the look-aheads at its end).
    reach: int = 2
    # A rejected candidate may hide a real one starting inside it, so the search goes on from
    # its second character; not so for the value of `token=…`, which is read to its end, and
    # searching inside it again would make long values cost quadratic time.
    look_inside_rejected: bool = True


_DETECTORS = (
    _Detector("SECRET", "key_prefix", _OPENAI_STYLE_KEY, _accept_openai_style_key),
    _Detector("SECRET", "key_prefix", _AWS_ACCESS_KEY_ID, _accept_aws_access_key_id),
    _Detector("SECRET", "key_prefix", _GITHUB_TOKEN, _accept_as_found),
    _Detector("SECRET", "key_prefix", _GITHUB_FINE_GRAINED_TOKEN, _accept_as_found),
    _Detector("SECRET", "key_prefix", _SLACK_TOKEN, _accept_as_found),
    _Detector("SECRET", "key_prefix", _JWT, _accept_as_found),
    _Detector("SECRET", "bearer", _BEARER, _accept_bearer, look_inside_rejected=False),
    _Detector(
        "SECRET", "authorization", _AUTHORIZATION, _accept_authorization, look_inside_rejected=False
    ),
    _Detector(
        "SECRET",
        "assignment",
        _ASSIGNED_SECRET,
        _accept_assigned_secret,
        look_inside_rejected=False,
    ),
    _Detector("SECRET", "url", _URL_PASSWORD, _accept_url_password),
    _Detector("EMAIL", "at", _EMAIL_DOMAIN, _accept_email),
    _Detector("IP", "colons", _IPV6, _accept_ipv6),
    _Detector("CARD", "number", _CARD, _accept_card),
    _Detector("IBAN", "number", _IBAN, _accept_iban, reach=42),
    _Detector("SSN", "number", _SSN, _accept_ssn),
    _Detector("IP", "number", _IPV4, _accept_ipv4),
    _Detector("PHONE", "number", _INTERNATIONAL_PHONE, _accept_international_phone, reach=16),
    _Detector("PHONE", "number", _NORTH_AMERICAN_PHONE, _accept_north_american_phone),
    _Detector(
        "PHONE", "number", _NORTH_AMERICAN_PHONE_PARENS, _accept_north_american_phone, reach=8
    ),
    _Detector("PHONE", "number", _NATIONAL_PHONE, _accept_national_phone),
)


def _scan(text: str, detector: _Detector, start: int, end: int) -> Iterator[PiiMatch]:
    position = start
    while (match := detector.pattern.search(text, position, end)) is not None:
        span = detector.accept(match, text)
        if span is None:
            position = match.start() + 1 if detector.look_inside_rejected else match.end()
        else:
            yield PiiMatch(detector.kind, span[0], span[1])
            position = span[1]


def _resolve_overlaps(found: list[PiiMatch]) -> list[PiiMatch]:
    """Keep, within each group of overlapping findings, those that do not overlap each other,
    choosing credentials first (a key in a URL's user part is a key, not an e-mail address),
    then the longest, then the most specific."""
    found.sort(key=lambda match: (match.start, -match.end))
    resolved: list[PiiMatch] = []
    group: list[PiiMatch] = []
    group_end = -1
    for match in found:
        if group and match.start >= group_end:
            resolved.extend(_best_of(group))
            group = []
        group.append(match)
        group_end = max(group_end, match.end)
    resolved.extend(_best_of(group))
    return resolved


def _best_of(group: list[PiiMatch]) -> list[PiiMatch]:
    if len(group) <= 1:
        return group
    chosen: list[PiiMatch] = []
    for match in sorted(group, key=_preference):
        if all(match.end <= kept.start or match.start >= kept.end for kept in chosen):
            chosen.append(match)
    return sorted(chosen, key=lambda m: m.start)


def _preference(match: PiiMatch) -> tuple[bool, int, int, int]:
    return (match.kind != "SECRET", match.start - match.end, _PRIORITY[match.kind], match.start)
