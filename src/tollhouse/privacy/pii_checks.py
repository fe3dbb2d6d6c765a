"""The arithmetic that tells a real identifier from a number of the same shape.

A regular expression only finds candidates; these checks are what keep an order number,
a timestamp or a random 16-digit id out of the scrubbed categories. Each takes the candidate
already reduced to its significant characters (digits, or letters and digits) and answers
whether it could be issued as such.
"""

from __future__ import annotations

# Total IBAN length per country (SWIFT IBAN registry). A candidate whose country is unknown
# or whose length differs is not an IBAN, which also tells where an unspaced IBAN ends.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """True when `digits` passes the Luhn check every payment card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """True when `compact` (upper case, no spaces) has its country's length and passes the
    ISO 13616 mod-97 check."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def ssn_valid(ssn: str) -> bool:
    """True when `ssn` (ddd-dd-dddd) lies in a range the US SSA assigns: area 000, 666 and
    900-999, group 00 and serial 0000 are never issued."""
    area, group, serial = ssn.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def looks_like_credential(value: str) -> bool:
    """True when a value found after `Bearer`, `token=`, `password:`… looks machine-made
    rather than like a word, a placeholder or a code expression.

    Random keys almost always mix letters and digits; the rare digit-free ones (long base64)
    still mix upper and lower case far more evenly than a CamelCase name does.
    """
    if len(value) < 8:
        return False
    has_digit = any(char.isdigit() for char in value)
    letters = [char for char in value if char.isalpha()]
    if has_digit and letters:
        return True
    if len(value) < 20 or "." in value or not letters:
        return False
    upper = sum(char.isupper() for char in letters)
    return 0.25 <= upper / len(letters) <= 0.75
