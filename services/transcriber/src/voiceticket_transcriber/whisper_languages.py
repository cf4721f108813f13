"""The language an OpenAI-compatible server says it heard, as the ISO 639-1 code the events carry.

OpenAI's ``verbose_json`` answer names the language in English words (``"german"``), while
self-hosted servers (faster-whisper-server, whisper.cpp, vLLM) usually answer Whisper's own code
(``"de"``). Both become ``"de"``. Whisper's codes are ISO 639-1 except ``haw`` (Hawaiian) and
``yue`` (Cantonese), which have no two-letter code and pass through as they are, and ``jw``,
Whisper's old spelling of Javanese, which is ``jv``. Anything unrecognised is reported as unknown
(None) rather than passed on: the analyzer then falls back to the line's language.
"""

from __future__ import annotations

# Whisper's language table (code: English name), as its tokenizer lists them.
_WHISPER: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip

_RENAMED = {"jw": "jv"}

# Other names the servers use for the same languages (Whisper's tokenizer aliases).
_ALIASES = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
    "castilian": "es", "mandarin": "zh",
}  # fmt: skip

_BY_NAME = {name: _RENAMED.get(code, code) for code, name in _WHISPER.items()} | _ALIASES
_BY_CODE = {code: _RENAMED.get(code, code) for code in _WHISPER} | {"jv": "jv"}


def iso_language(reported: object) -> str | None:
    """``"German"``, ``"german"``, ``"de"`` or ``"de-DE"`` → ``"de"``; None when not a language."""
    if not isinstance(reported, str):
        return None
    word = reported.strip().lower().replace("_", "-")
    if not word:
        return None
    if word in _BY_NAME:
        return _BY_NAME[word]
    return _BY_CODE.get(word.split("-", 1)[0])
