"""Check-digit rules for the identifiers the redaction engine recognises (pure functions)."""

from __future__ import annotations

# Issuer prefixes start with a major industry identifier; 2-6 covers Mastercard (2-series and 5),
# Amex/Diners/JCB (3), Visa (4), Discover/UnionPay/Maestro (6). 1 (airlines), 7-9 and 0 are not
# payment-card ranges in practice and are excluded to keep Luhn's 1-in-10 false positives down.
_CARD_FIRST_DIGITS = frozenset("23456")


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST_DIGITS and luhn_ok(digits)


# ISO 13616 lengths per country (SWIFT IBAN registry). Countries whose BBAN is digits only are
# the ones a spoken IBAN ("D E acht neun ...") can be recognised for.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(compact: str) -> bool:
    """`compact` is upper-case letters and digits, no separators."""

    if len(compact) != IBAN_LENGTHS.get(compact[:2], -1) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    remainder = 0
    for char in rearranged:
        if char.isdigit():
            remainder = (remainder * 10 + ord(char) - 48) % 97
        elif "A" <= char <= "Z":
            remainder = (remainder * 100 + ord(char) - 55) % 97
        else:
            return False
    return remainder == 1


def de_tax_id_ok(digits: str) -> bool:
    """German Steuerliche Identifikationsnummer: 11 digits, ISO 7064 MOD 11,10 check digit, no
    leading zero, and in the first ten digits exactly one digit occurs twice or three times (a
    tripled digit never three times in a row)."""

    if len(digits) != 11 or digits[0] == "0":
        return False
    body = digits[:10]
    counts = [body.count(d) for d in set(body)]
    repeated = [c for c in counts if c > 1]
    if len(repeated) != 1 or repeated[0] > 3:
        return False
    if repeated[0] == 3 and any(body[i] == body[i + 1] == body[i + 2] for i in range(8)):
        return False
    product = 10
    for char in body:
        total = (ord(char) - 48 + product) % 10
        if total == 0:
            total = 10
        product = (total * 2) % 11
    check = 11 - product
    if check == 10:
        check = 0
    return check == ord(digits[10]) - 48


def fr_nir_ok(value: str) -> bool:
    """French NIR (numéro de sécurité sociale): 13 characters + 2-digit key = 97 - (n mod 97).
    `value` is 15 characters; Corsican departments 2A/2B count as 19/18 for the key."""

    if len(value) != 15 or value[0] not in "12378":
        return False
    month = value[3:5]
    if not month.isdigit() or not (1 <= int(month) <= 12 or 20 <= int(month) <= 42 or int(month) >= 50):
        return False
    body = value[:13].upper()
    if body[5:7] == "2A":
        number = int(body[:5] + "19" + body[7:]) if body[7:].isdigit() else -1
    elif body[5:7] == "2B":
        number = int(body[:5] + "18" + body[7:]) if body[7:].isdigit() else -1
    else:
        number = int(body) if body.isdigit() else -1
    key = value[13:]
    if number < 0 or not key.isdigit():
        return False
    return 97 - number % 97 == int(key)


def us_ssn_ok(digits: str) -> bool:
    """SSA allocation rules (no checksum exists): area 001-899 except 666, group 01-99, serial
    0001-9999."""

    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _icao_value(char: str) -> int:
    if char.isdigit():
        return ord(char) - 48
    return ord(char) - 55


def icao_check_ok(body: str, check: str) -> bool:
    """ICAO 9303 check digit (weights 7, 3, 1), as on the German Personalausweis serial."""

    weights = (7, 3, 1)
    total = sum(_icao_value(char) * weights[index % 3] for index, char in enumerate(body))
    return total % 10 == ord(check) - 48
