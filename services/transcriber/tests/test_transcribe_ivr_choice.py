"""The IVR menu's language (issue #16, part 2): a caller who chose an option with a language told us
theirs, so it is the speech-to-text language hint; otherwise the language is detected as before."""

from __future__ import annotations

from staged_audio import WrittenRecordings
from test_transcribe import WAV, FakeEngine, config

from voiceticket_common.events.v1 import IvrChoice
from voiceticket_common.testing import recording_completed
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording


async def test_the_chosen_language_is_the_hint_and_the_choice_travels_on() -> None:
    chosen = IvrChoice(digit="3", label="Français", language="fr", input="dtmf")
    engine = FakeEngine("Bonjour, mon VPN ne marche pas.", language="fr")
    deps = TranscriberDeps(config=config("enforced"), recordings=WrittenRecordings(WAV), engine=engine)
    [event] = await transcribe_recording(recording_completed(duration_seconds=9, ivr_choice=chosen), deps)
    assert engine.targets[0].language == "fr"
    assert event.ivr_choice == chosen


async def test_a_choice_without_a_language_leaves_it_to_detection() -> None:
    chosen = IvrChoice(digit="1", label="Billing", request_type_id="44", input="speech")
    engine = FakeEngine("Hello, my VPN is down.", language="en")
    deps = TranscriberDeps(config=config("enforced"), recordings=WrittenRecordings(WAV), engine=engine)
    [event] = await transcribe_recording(recording_completed(duration_seconds=9, ivr_choice=chosen), deps)
    assert engine.targets[0].language is None
    assert event.ivr_choice == chosen
