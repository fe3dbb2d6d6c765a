"""Keeping personal data and credentials out of what the gateway writes down."""

from tollhouse.privacy.pii import PiiKind, PiiMatch, find_pii, scrub_text, scrub_value

__all__ = ["PiiKind", "PiiMatch", "find_pii", "scrub_text", "scrub_value"]
