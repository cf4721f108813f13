from __future__ import annotations

import pytest
from staged_audio import WrittenRecordings, openai_line_config

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import CallTranscribed, RecordingCompleted
from voiceticket_common.runtime_views import TranscriberView
from voiceticket_common.testing import StaticRuntimeConfig, recording_completed
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.ports import Transcript


class FakeEngine:
    def __init__(self, text: str, language: str | None = None) -> None:
        self.text = text
        self.language = language
        self.targets = []

    async def transcribe(self, recording, target):  # type: ignore[no-untyped-def]
        self.targets.append(target)
        return Transcript(self.text, language=self.language)


def config(language_mode: str = "auto") -> StaticRuntimeConfig[TranscriberView]:
    return openai_line_config(language_mode=language_mode, language="de")


def completed() -> RecordingCompleted:
    return recording_completed(duration_seconds=9)


WAV = b"RIFF...."


async def test_recording_becomes_a_transcript_event() -> None:
    engine = FakeEngine("Hello, my VPN is down.")
    deps = TranscriberDeps(config=config(), recordings=WrittenRecordings(WAV), engine=engine)
    [event] = await transcribe_recording(completed(), deps)
    assert isinstance(event, CallTranscribed)
    assert event.transcript == "Hello, my VPN is down."
    assert event.model == "whisper-1"
    assert event.language is None
    assert engine.targets[0].language is None


@pytest.mark.parametrize("mode", ["enforced", "auto"])
async def test_the_language_is_detected_never_forced_even_on_an_enforced_line(mode: str) -> None:
    # The line enforces "de"; the caller speaks English: speech-to-text must hear English.
    engine = FakeEngine("Hello, my VPN is down.", language="en")
    deps = TranscriberDeps(config=config(mode), recordings=WrittenRecordings(WAV), engine=engine)
    [event] = await transcribe_recording(completed(), deps)
    assert engine.targets[0].language is None
    assert event.transcript == "Hello, my VPN is down."
    assert (event.language, event.detected_language) == ("en", "en")


@pytest.mark.parametrize("error", [TransientError("404 not yet"), PermanentError("too large")])
async def test_download_failures_propagate_for_the_bus_to_retry_or_dead_letter(error: Exception) -> None:
    deps = TranscriberDeps(config=config(), recordings=WrittenRecordings(error), engine=FakeEngine("x"))
    with pytest.raises(type(error)):
        await transcribe_recording(completed(), deps)
