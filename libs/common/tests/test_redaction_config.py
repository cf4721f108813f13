"""Redaction policy: tenant-defined patterns, configuration errors, bounds."""

from __future__ import annotations

import pytest

from voiceticket_common.redaction import (
    CustomPattern,
    RedactionConfigError,
    RedactionInputTooLarge,
    RedactionPolicy,
    Redactor,
    placeholder,
)


def test_tenant_pattern_is_redacted_and_counted() -> None:
    policy = RedactionPolicy.from_mapping(
        {"custom_patterns": [{"kind": "contract_number", "pattern": r"\bVT-\d{6}\b"}], "emails": True}
    )
    result = Redactor(policy).redact("Vertrag VT-123456 und VT-654321, Mail an a.b@example.de")
    assert result.text == (
        f"Vertrag {placeholder('contract_number')} und {placeholder('contract_number')}, "
        f"Mail an {placeholder('email')}"
    )
    assert result.record() == {"contract_number": 2, "email": 1}
    assert placeholder("contract_number") == "[redacted: contract number]"


def test_tenant_pattern_matches_across_window_boundaries() -> None:
    policy = RedactionPolicy(custom_patterns=(CustomPattern("asset_tag", r"ASSET-[A-Z]{3}\d{4}"),))
    text = ("x " * 2046) + "ASSET-ABC1234 " + ("y " * 3000) + "ASSET-XYZ9876"
    result = Redactor(policy).redact(text)
    assert result.counts == {"asset_tag": 2}
    assert "ASSET-" not in result.text


@pytest.mark.parametrize(
    ("kind", "pattern", "message"),
    [
        ("contract", r"VT-(\d{6}", "not a valid regular expression"),
        ("contract", r"(a+)+b", "nests a variable repetition"),
        ("contract", r"^(?:\w+\s?)+$", "nests a variable repetition"),
        ("contract", r"x*", "can match empty text"),
        ("contract", "", "empty"),
        ("Contract-No", r"VT-\d+", "lower-case letters"),
        ("contract2", r"VT-\d+", "lower-case letters"),
        ("payment_card", r"VT-\d+", "built-in kind"),
        ("contract", "a" * 1001, "longer than"),
    ],
)
def test_bad_tenant_patterns_are_clear_config_errors(kind: str, pattern: str, message: str) -> None:
    with pytest.raises(RedactionConfigError, match=message):
        CustomPattern(kind, pattern)


def test_atomic_and_possessive_nesting_is_allowed() -> None:
    CustomPattern("ticket_ref", r"(?>[A-Z]+\d+)+")
    CustomPattern("ticket_ref", r"(?:[A-Z]+\d+)++")
    CustomPattern("ticket_ref", r"(?:[A-Z]{2}\d{4})+")  # fixed-length inner repetition


def test_mapping_errors() -> None:
    with pytest.raises(RedactionConfigError, match="unknown redaction settings: phones"):
        RedactionPolicy.from_mapping({"phones": True})
    with pytest.raises(RedactionConfigError, match="true or false"):
        RedactionPolicy.from_mapping({"emails": "yes"})
    with pytest.raises(RedactionConfigError, match="kind"):
        RedactionPolicy.from_mapping({"custom_patterns": [{"pattern": "x"}]})
    with pytest.raises(RedactionConfigError, match="unique"):
        RedactionPolicy(custom_patterns=(CustomPattern("a", "x"), CustomPattern("a", "y")))
    with pytest.raises(RedactionConfigError, match="context_window"):
        RedactionPolicy(context_window=5)


def test_input_beyond_the_limit_is_refused_not_passed_through() -> None:
    redactor = Redactor(RedactionPolicy(max_input_chars=100))
    with pytest.raises(RedactionInputTooLarge):
        redactor.redact("4111 1111 1111 1111 " * 10)


def test_kinds_can_be_switched_off() -> None:
    policy = RedactionPolicy(payment_cards=False, card_details=False, ibans=False, national_ids=False)
    text = "4111 1111 1111 1111 exp 03/27 cvv 123 DE89 3704 0044 0532 0130 00 123-45-6789"
    assert Redactor(policy).redact(text).text == text


def test_context_window_bounds_how_far_codes_are_looked_for() -> None:
    text = "card 4111 1111 1111 1111, the weather is nice today and all that, 123"
    assert Redactor(RedactionPolicy(context_window=80)).redact(text).counts["card_security_code"] == 1
    assert "card_security_code" not in Redactor(RedactionPolicy(context_window=20)).redact(text).counts


def test_redaction_is_deterministic_and_frozen() -> None:
    text = "vier eins eins eins " * 4 + "gültig bis 03/27"
    first = Redactor().redact(text, "de")
    assert first == Redactor().redact(text, "de")
    with pytest.raises(AttributeError):
        first.text = "x"  # type: ignore[misc]
