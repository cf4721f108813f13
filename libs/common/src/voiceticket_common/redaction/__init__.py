"""Redaction of payment and identity data from call transcripts (issue #10, point 2).

Every transcript passes through `Redactor.redact` before it leaves for the LLM or Jira::

    redactor = Redactor(RedactionPolicy())            # once per tenant policy (patterns compile here)
    result = redactor.redact(transcript, language="de")
    result.text      # "... meine Karte ist [redacted: payment card], gültig bis [redacted: card expiry date] ..."
    result.counts    # {"card_expiry": 1, "payment_card": 1}  - kinds and counts, never values or offsets

Each finding is replaced by ``[redacted: <label>]`` (English labels, one form for every language:
"payment card", "card security code", "card expiry date", "IBAN", "US social security number",
"UK national insurance number", "German tax ID", "German ID card number", "French social security
number", "email address", "phone number", or the tenant kind with "_" read as " "). Text already
shaped like a placeholder is kept and never matched, and `redact` repeats its pass until nothing
more is found, so redacting a redacted text changes nothing. The output is deterministic.

What is detected
================

Numbers are read from digits and from number words. Digits may be grouped with spaces, dashes,
dots, commas or slashes ("4111 1111-1111.1111"); words may be mixed with digits. Number words:

* English: zero/oh/o/nought, one..nineteen, twenty..ninety, "twenty one"/"twenty-one",
  "double"/"triple"/"treble" + one digit ("double four" = 44), "two thousand (and) twenty seven".
* German: null, eins, zwei/zwo, drei .. neun, zehn .. neunzehn, zwanzig .. neunzig, the compounds
  speech-to-text writes as one word ("einundzwanzig", "siebenundneunzig") or apart ("ein und
  zwanzig"), "zweitausendsiebenundzwanzig", "doppel"/"doppelt(e)"/"dreifach" + one digit.
  Umlaut spellings fünf/fuenf/funf, zwölf/zwoelf, dreißig/dreissig are all read.
* French: zéro, un .. seize, dix-sept .. dix-neuf, vingt .. soixante, "vingt-et-un", "soixante-dix",
  "soixante-et-onze", "quatre-vingt(s)", "quatre-vingt-dix-neuf" (hyphenated or with spaces),
  Belgian/Swiss septante/huitante/octante/nonante, "deux mille vingt-sept", "double"/"triple".
  A compound is read greedily: "quatre vingt" is 80, never "4 20".
* `language` ("en", "de-DE", "fr") restricts the number words to that language; None or another
  language reads all three. Keywords and month names are always read in all three languages.

Kinds:

* ``payment_card``: 13-19 digits that pass the Luhn check and start with 2-6 (Visa, Mastercard,
  Amex, Discover, JCB, Diners, UnionPay, Maestro), digits or words as above. A candidate must start
  and end on a spoken/written group boundary, never follows a "+" (phone numbers), and all
  overlapping Luhn-valid windows are merged, so extra digits said next to a card go with it.
* ``card_expiry`` and ``card_security_code``: only within `context_window` characters (default
  80) after a card number or a keyword, or half that before a keyword ("123 is the CVV"). Keywords: CVV, CVC, CVN, CSC,
  security code, verification code, digits/code on the back, Prüfnummer, Prüfziffer,
  Sicherheitscode, Sicherheitsnummer, drei Ziffern, cryptogramme (visuel), code de sécurité, code
  de vérification, code au dos; expiry/expires/expiration/exp, valid until/thru, good thru, gültig
  (bis), Gültigkeit, Ablauf(datum), läuft ab, Verfallsdatum, date d'expiration, expire, valable
  jusqu'à/au, fin de validité. Expiry forms: MM/YY, MM/YYYY, M/YY, "03 27", "0327", "oh three twenty
  seven", a month name (English, German, French, with common abbreviations) followed by a 2- or
  4-digit year ("March twenty seven", "März siebenundzwanzig", "mars vingt-sept", "June 2027").
  Security codes: any 3- or 4-digit number in the window. An expiry and a code said in one breath
  ("oh three twenty seven one two three") are split. Near a card without a keyword, every 3-4 digit
  number and every expiry-shaped number in the window is redacted (over-redaction is deliberate).
* ``iban``: country code + check digits + BBAN of exactly the registry length for that country
  (about 70 countries), mod-97 valid; written compact or grouped, upper or lower case, letters of
  the country code optionally apart ("D E 89 ..."). Spoken: the two letters written as single
  letters or an upper-case pair, followed by digits or number words ("D E acht neun drei ...") -
  only for IBANs whose BBAN is all digits (DE, AT, BE, ES, ...).
* ``us_ssn``: AAA-GG-SSSS or AAA GG SSSS anywhere (SSA rules: no 000/666/9xx area, 00 group,
  0000 serial; SSNs have no checksum); 9 digits in any form (spoken too) only near "social
  security"/"SSN".
* ``uk_nino``: two prefix letters (HMRC-allowed letters, not BG/GB/KN/NK/NT/TN/ZZ), six digits,
  suffix A-D, spaces optional. Written form only (no checksum exists).
* ``de_tax_id``: Steuer-ID, 11 digits, ISO 7064 MOD 11,10 check digit and the digit-repetition
  rule; anywhere when it is a whole number on its own ("12 345 678 901", spoken or written), and
  inside a longer run of digits only near a keyword (Steuer-ID, Steueridentifikationsnummer,
  Identifikationsnummer, IdNr, Steuernummer, tax ID).
* ``de_id_card``: Personalausweis serial (since 2010: 9 characters from the ICAO alphabet the
  German ID uses, at least one digit, then the 7-3-1 check digit), written, upper case, and only
  near a keyword (Personalausweis, Ausweisnummer, Ausweis, ID card, Seriennummer).
* ``fr_nir``: numéro de sécurité sociale, 13 digits + key (97 - n mod 97), sex 1/2/7/8, month
  01-12/20-42/50-99, anywhere, spoken or written; Corsica (2A/2B) written only.
* Tenant kinds (``RedactionPolicy.custom_patterns``): each (kind, regex) is compiled once; an
  invalid regex, a pattern that can match empty text, a variable repetition nested inside another
  (``(a+)+``, ``(\\d{2,4}-)*``; atomic/possessive forms are allowed), more than 1,000 characters or
  64 patterns, or a kind that is not 1-48 lower-case letters/underscores raises
  RedactionConfigError. Patterns run over 4,096-character windows that overlap by 512, which
  bounds the cost of a slow pattern; a match longer than 512 characters may be missed.
* ``email`` (off by default): address@domain.tld as written.
* ``phone_number`` (off by default): "+"/"00" international numbers (E.164 with or without
  separators, 8-15 digits), national numbers with a trunk 0 (9-15 digits: "0176 1234567",
  "06 12 34 56 78", "020 7946 0958") and North American "(415) 555-0100"/"415-555-0100".

Order: tenant patterns, emails, written IBANs, written national IDs, then number runs (cards,
spoken IBANs, NIR, Steuer-ID, SSN), then expiry dates and codes, then phone numbers; a span taken
earlier is never taken again.

Limits (known, deliberate)
==========================

* Not read: "hundred"/"hundert"/"cent", "thousand"/"tausend"/"mille" (except in "two thousand
  and ...", "zweitausend...", "deux mille ..." years), ordinals ("twenty seventh"), numbers
  spelled digit by digit with words other than the fillers uh/um/äh/euh in between, Roman
  numerals, and numbers in other languages.
* A card read as fewer than 13 digits, with a digit misheard by speech-to-text, or broken by a
  word ("four one one one, sorry, one one ...") is not found - it no longer passes Luhn. A
  Luhn-valid 13-19 digit number that is not a card (1 in 10 random numbers starting with 2-6) is
  redacted anyway.
* Security codes and expiry dates far from a card and from every keyword stay; so does a
  keyword-less expiry when no card was found. Conversely, any 3-4 digit number near a card or a
  keyword is redacted (e.g. "order 4521" right after a card number).
* Spoken emails ("john dot doe at ..."), spoken phone numbers, UK NINOs, Personalausweis numbers
  and IBANs with letters in the BBAN (GB, FR with letters, ...) are not read from words. The old
  Personalausweis (before Nov 2010) and other countries' IDs are not detected.
* Only `max_input_chars` (default 500,000) are accepted; longer input raises
  RedactionInputTooLarge instead of passing anything through unredacted.
* The nested-repetition check for tenant patterns is a heuristic: it refuses ``(a+)+`` but not
  overlapping alternations such as ``(a|a)*``; the windowing keeps such patterns bounded.

Cost is linear in the text (every token is looked at a bounded number of times).
"""

from ._custom import RedactionConfigError
from ._engine import (
    BUILTIN_KINDS,
    CARD_EXPIRY,
    CARD_SECURITY_CODE,
    DE_ID_CARD,
    DE_TAX_ID,
    EMAIL,
    FR_NIR,
    IBAN,
    LABELS,
    PAYMENT_CARD,
    PHONE_NUMBER,
    UK_NINO,
    US_SSN,
    CustomPattern,
    Redaction,
    RedactionInputTooLarge,
    RedactionPolicy,
    Redactor,
    placeholder,
)
from ._tenant import WITHHELD_TRANSCRIPT, merged_counts, redact_or_none, tenant_redactor

__all__ = [
    "BUILTIN_KINDS",
    "WITHHELD_TRANSCRIPT",
    "CARD_EXPIRY",
    "CARD_SECURITY_CODE",
    "DE_ID_CARD",
    "DE_TAX_ID",
    "EMAIL",
    "FR_NIR",
    "IBAN",
    "LABELS",
    "PAYMENT_CARD",
    "PHONE_NUMBER",
    "UK_NINO",
    "US_SSN",
    "CustomPattern",
    "Redaction",
    "RedactionConfigError",
    "RedactionInputTooLarge",
    "RedactionPolicy",
    "Redactor",
    "merged_counts",
    "placeholder",
    "redact_or_none",
    "tenant_redactor",
]
