"""The transcript redaction engine on English, German and French transcripts as speech-to-text
writes them (libs/common/src/voiceticket_common/redaction)."""

from __future__ import annotations

import json
import re

import pytest

from voiceticket_common.redaction import (
    Redaction,
    RedactionPolicy,
    Redactor,
    placeholder,
)

CARD = placeholder("payment_card")
EXPIRY = placeholder("card_expiry")
CODE = placeholder("card_security_code")
IBAN = placeholder("iban")

redactor = Redactor()
everything = Redactor(RedactionPolicy(emails=True, phone_numbers=True))


def redact(text: str, language: str | None = None, engine: Redactor = redactor) -> Redaction:
    result = engine.redact(text, language=language)
    again = engine.redact(result.text, language=language)
    assert again.text == result.text, "redacting twice changed the text"
    assert again.total == 0
    record = json.dumps(result.record())
    for digits in re.findall(r"\d{2,}", text):
        assert digits not in record
    assert not re.search(r"\d", "".join(result.counts))
    return result


# --- English ----------------------------------------------------------------------------------


def test_en_card_as_digits_with_expiry_and_cvv() -> None:
    text = (
        "Okay, so the card number is 4111 1111 1111 1111, the expiry is 03/27 and the CVV on the back "
        "is 123. Can you put the order through today?"
    )
    result = redact(text, "en")
    assert result.text == (
        f"Okay, so the card number is {CARD}, the expiry is {EXPIRY} and the CVV on the back "
        f"is {CODE}. Can you put the order through today?"
    )
    assert result.record() == {"card_expiry": 1, "card_security_code": 1, "payment_card": 1}


def test_en_card_spoken_with_double_triple_and_oh() -> None:
    text = (
        "Sure, it's a Visa, four triple oh, oh five double six, five five six six, five five five six. "
        "Expires oh four twenty eight. Security code, uh, seven three one."
    )
    result = redact(text, "en")
    assert result.text == f"Sure, it's a Visa, {CARD}. Expires {EXPIRY}. Security code, uh, {CODE}."
    assert result.counts == {"card_expiry": 1, "card_security_code": 1, "payment_card": 1}


def test_en_card_in_pairs_and_month_name_expiry_without_keyword() -> None:
    text = (
        "it's fifty five fifty five, fifty five fifty five, fifty-five fifty-five, forty four forty four, "
        "March twenty twenty seven, and then two one nine"
    )
    result = redact(text)
    assert result.text == f"it's {CARD}, {EXPIRY}, and then {CODE}"


def test_en_amex_with_four_digit_code_and_dashes() -> None:
    text = "The Amex is 3782-822463-10005, valid thru 11/2026, security code 4021."
    assert redact(text).text == f"The Amex is {CARD}, valid thru {EXPIRY}, security code {CODE}."


def test_en_expiry_and_code_said_in_one_breath_after_the_card() -> None:
    text = "card 5555 5555 5555 4444 oh nine twenty six four four two then"
    result = redact(text)
    assert result.text == f"card {CARD} {EXPIRY} {CODE} then"


def test_en_two_cards_in_one_breath_are_counted_twice() -> None:
    text = "the old one was 4111111111111111 4012888888881881 both blocked"
    result = redact(text)
    assert result.text == f"the old one was {CARD} {CARD} both blocked"
    assert result.counts == {"payment_card": 2}


def test_en_ssn_and_national_insurance_number() -> None:
    text = (
        "For the payroll account my social security number is 123-45-6789, and my colleague in London "
        "gave his national insurance number AB 12 34 56 C."
    )
    result = redact(text)
    assert result.text == (
        f"For the payroll account my social security number is {placeholder('us_ssn')}, and my colleague "
        f"in London gave his national insurance number {placeholder('uk_nino')}."
    )


def test_en_spoken_ssn_only_near_the_keyword() -> None:
    near = "my social is one two three, four five, six seven eight nine"
    assert redact(near, "en").text == f"my social is {placeholder('us_ssn')}"
    far = "the serial on the unit is one two three four five six seven eight nine"
    assert redact(far, "en").text == far


@pytest.mark.parametrize(
    ("language", "text"),
    [
        (
            "en",
            "My order number is 4000 1234 5678 9011 and the ticket was 4521. The outage started on 03/27 "
            "at 10:15, I called on +1 415 555 0100 and (415) 555-0199, the build is 2.14.3 and I paid 120 dollars.",
        ),
        (
            "de",
            "Die Bestellnummer ist 4000 1234 5678 9011, der Termin ist am 12.03.2027 um 14 Uhr, "
            "Rückruf bitte unter 0176 12345678 oder +49 30 1234567, Kundennummer 123 456.",
        ),
    ],
    ids=["en", "de"],
)
def test_negatives_stay(language: str, text: str) -> None:
    result = redact(text, language)
    assert result.text == text
    assert result.counts == {}


def test_en_phone_and_email_masking_when_enabled() -> None:
    text = "Call me back on +1 415 555 0100 or 415-555-0199, or mail jane.doe@example.com, order 4521."
    result = redact(text, "en", everything)
    assert result.text == (
        f"Call me back on {placeholder('phone_number')} or {placeholder('phone_number')}, or mail "
        f"{placeholder('email')}, order 4521."
    )
    assert result.counts == {"email": 1, "phone_number": 2}


def test_en_number_said_before_the_card_stays() -> None:
    text = "it's about ticket 4521 from last week, my card is 4111 1111 1111 1111"
    assert redact(text).text == f"it's about ticket 4521 from last week, my card is {CARD}"


def test_en_date_far_from_the_card_stays() -> None:
    filler = "and the printer in the second floor meeting room keeps jamming on every single page. "
    text = f"card 4111 1111 1111 1111. {filler * 2}The contract renews 03/27."
    assert redact(text).text == f"card {CARD}. {filler * 2}The contract renews 03/27."


# --- German -----------------------------------------------------------------------------------


def test_de_card_in_compound_numbers_with_expiry_and_pruefnummer() -> None:
    text = (
        "Ja also die Kartennummer ist neunundvierzig einundsiebzig einundachtzig siebzig "
        "fünfundneunzig elf zweiundzwanzig fünfunddreißig, gültig bis März siebenundzwanzig, "
        "und die Prüfnummer ist drei zwei eins."
    )
    result = redact(text, "de")
    assert result.text == (
        f"Ja also die Kartennummer ist {CARD}, gültig bis {EXPIRY}, und die Prüfnummer ist {CODE}."
    )


def test_de_card_digit_by_digit_with_doppel_and_zwo() -> None:
    text = (
        "Vier null null null, null fünf doppel sechs, fünf fünf sechs sechs, fünf fünf fünf sechs. "
        "Ablaufdatum null vier achtundzwanzig. Sicherheitscode zwo eins sieben."
    )
    assert redact(text, "de-DE").text == f"{CARD}. Ablaufdatum {EXPIRY}. Sicherheitscode {CODE}."


def test_de_card_as_digits_with_dots() -> None:
    text = "Meine Karte: 5555.5555.5555.4444, läuft ab 09/2026, CVC 998."
    assert redact(text, "de").text == f"Meine Karte: {CARD}, läuft ab {EXPIRY}, CVC {CODE}."


def test_de_iban_written_and_spoken() -> None:
    written = "Überweisen Sie bitte auf DE89 3704 0044 0532 0130 00, danke."
    assert redact(written, "de").text == f"Überweisen Sie bitte auf {IBAN}, danke."
    spoken = (
        "Die IBAN ist D E acht neun drei sieben null vier null null vier vier null fünf drei zwei "
        "null eins drei null null null."
    )
    result = redact(spoken, "de")
    assert result.text == f"Die IBAN ist {IBAN}."
    assert result.counts == {"iban": 1}


def test_de_steuer_id_and_personalausweis() -> None:
    text = (
        "Für die Lohnabrechnung: meine Steuer-ID ist 86 095 742 719 und meine Ausweisnummer "
        "T220001293, falls Sie die brauchen."
    )
    result = redact(text, "de")
    assert result.text == (
        f"Für die Lohnabrechnung: meine Steuer-ID ist {placeholder('de_tax_id')} und meine Ausweisnummer "
        f"{placeholder('de_id_card')}, falls Sie die brauchen."
    )


def test_de_steuer_id_with_wrong_check_digit_stays() -> None:
    text = "Die Steuer-ID ist 86095742718, glaube ich."
    assert redact(text, "de").text == text


def test_de_ausweis_shaped_code_without_keyword_stays() -> None:
    text = "Der Fehlercode auf dem Display lautet T220001293."
    assert redact(text, "de").text == text


# --- French -----------------------------------------------------------------------------------


def test_fr_card_with_soixante_dix_compounds() -> None:
    text = (
        "Alors ma carte c'est cinquante-cinq soixante-dix-sept soixante et onze soixante-douze "
        "quatre-vingt-treize quatre-vingt-dix-sept quatre-vingt-deux dix, date d'expiration mars "
        "vingt-sept, et le cryptogramme c'est quatre cinq six."
    )
    result = redact(text, "fr")
    assert result.text == (
        f"Alors ma carte c'est {CARD}, date d'expiration {EXPIRY}, et le cryptogramme c'est {CODE}."
    )


def test_fr_card_digit_by_digit_with_double() -> None:
    text = (
        "Oui, quatre un un un, un un un un, un un un un, un un un un. Elle expire zéro trois vingt-sept "
        "et le code de sécurité c'est double deux trois."
    )
    assert (
        redact(text, "fr-FR").text
        == f"Oui, {CARD}. Elle expire {EXPIRY} et le code de sécurité c'est {CODE}."
    )


def test_fr_card_with_spaced_compounds_and_year_in_words() -> None:
    text = (
        "quarante-neuf soixante et onze quatre vingt un soixante dix quatre vingt quinze onze vingt deux "
        "trente-cinq, valable jusqu'à juin deux mille vingt-huit"
    )
    assert redact(text, "fr").text == f"{CARD}, valable jusqu'à {EXPIRY}"


def test_fr_iban_and_nir() -> None:
    text = (
        "Mon IBAN est FR14 2004 1010 0505 0001 3M02 606 et mon numéro de sécurité sociale est le "
        "1 85 05 78 006 084 91."
    )
    result = redact(text, "fr")
    assert result.text == (
        f"Mon IBAN est {IBAN} et mon numéro de sécurité sociale est le {placeholder('fr_nir')}."
    )
    assert result.counts == {"fr_nir": 1, "iban": 1}


def test_fr_nir_spoken_and_corsica() -> None:
    spoken = "c'est deux soixante-neuf zéro deux quatre-vingt-dix-neuf trois cent"  # "cent" is not read
    assert redact(spoken, "fr").text == spoken
    corsica = "numéro 2 69 02 2A 341 732 " + str(97 - int("2690219341732") % 97).zfill(2)
    assert redact(corsica, "fr").text == f"numéro {placeholder('fr_nir')}"


def test_fr_negatives_stay() -> None:
    text = (
        "Le numéro de commande est le 4000 1234 5678 9011, j'ai rendez-vous le 3 mars à 9 heures, "
        "rappelez-moi au 06 12 34 56 78, la facture fait 1 250 euros."
    )
    result = redact(text, "fr")
    assert result.text == text
    assert result.counts == {}


def test_fr_phone_masking_when_enabled() -> None:
    text = "rappelez-moi au 06 12 34 56 78 ou au +33 6 12 34 56 78"
    result = redact(text, "fr", everything)
    assert result.text == f"rappelez-moi au {placeholder('phone_number')} ou au {placeholder('phone_number')}"


# --- across languages -------------------------------------------------------------------------


@pytest.mark.parametrize("language", [None, "en", "de", "fr", "es"])
def test_digits_are_read_in_every_language(language: str | None) -> None:
    assert redact("Karte 4111-1111-1111-1111", language).counts == {"payment_card": 1}


def test_language_restricts_number_words() -> None:
    text = "quatre un un un un un un un un un un un un un un un"
    assert redact(text, "de").counts == {}
    assert redact(text, "fr").counts == {"payment_card": 1}
    assert redact(text).counts == {"payment_card": 1}


def test_luhn_invalid_sixteen_digits_stay_in_every_form() -> None:
    for text in (
        "4111 1111 1111 1112",
        "four one one one one one one one one one one one one one one two",
        "vier eins eins eins eins eins eins eins eins eins eins eins eins eins eins zwei",
    ):
        assert redact(text).text == text


def test_placeholders_in_the_input_are_kept_and_not_keywords() -> None:
    text = f"{CODE} 123 and {placeholder('contract_number')}"
    assert redact(text).text == text


def test_counts_never_hold_values_for_a_long_mixed_call() -> None:
    text = (
        "Hi, I'm calling about the renewal. Card is 4111 1111 1111 1111, expires 12/27, CVV 737. "
        "Wait, the other one: fifty five fifty five fifty five fifty five fifty five fifty five forty four "
        "forty four, exp oh one thirty, code nine nine eight. My IBAN is GB82 WEST 1234 5698 7654 32 and "
        "SSN 123-45-6789. Thanks!"
    )
    result = redact(text, "en")
    assert result.record() == {
        "card_expiry": 2, "card_security_code": 2, "iban": 1, "payment_card": 2, "us_ssn": 1,
    }  # fmt: skip
    assert not re.search(r"\d{2,}", result.text)
