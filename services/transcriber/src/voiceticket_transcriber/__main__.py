"""``python -m voiceticket_transcriber``: recordings in, transcripts out."""

from __future__ import annotations

from voiceticket_common import service

from .bootstrap import SERVICE


def main() -> None:
    service.main(SERVICE)


if __name__ == "__main__":
    main()
