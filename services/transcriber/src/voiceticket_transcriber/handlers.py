"""recording completed -> transcript.

Download (streamed to a file in the call's private workspace, ``staging.py``, removed when the
handler ends however it ends), then: silent recordings skip speech-to-text (transcript "");
recordings over the upload limit are re-encoded or split, block by block from the file in a
worker thread (``audio_prep.py``); each upload is streamed from its file and transcribed within
a retry budget by the tenant's backend (``transcription_backend``: its OpenAI-compatible server,
or the local Whisper engine, whose parts are shorter); text the model invents for silence is
dropped. When speech-to-text stays down past the budget the call still goes on, with an empty
transcript flagged ``transcript_missing``, so the request is created for triage instead of the
call being lost. Permanent errors (a bad key) still dead-letter.

The transcript is redacted here, right after speech-to-text and before anything else sees it,
with the tenant's policy (``voiceticket_common.redaction``: card numbers, expiry dates, security
codes, IBANs, national IDs, the tenant's own patterns): the bus, the ledger, the language model
and Jira only ever get the redacted text, and ``redactions`` records the kinds and counts, never the
values. A transcript that cannot be redacted (over the engine's limit, a policy it refuses) is
withheld, a placeholder stands in for it and ``redaction_failed`` sends the request to triage.

Each recording is transcribed once: the outcome is kept in the transcript ledger, and a duplicate
callback or a redelivery of the same recording re-emits the stored ``call.transcribed`` (same
event, same id) instead of returning nothing or paying for speech-to-text again (ADR 8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pydantic import SecretStr

from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import (
    CallScreened,
    CallTranscribed,
    Event,
    RecordingCompleted,
    TranscriptSegment,
)
from voiceticket_common.events.v1 import SCREENED_SILENCE, SCREENED_TONE
from voiceticket_common.ledger import kept_outcome, stored_outcome
from voiceticket_common.metrics import call_screened, record_transcription
from voiceticket_common.redaction import WITHHELD_TRANSCRIPT, redact_or_none
from voiceticket_common.retry_budget import BudgetExhausted, RetryBudget, Sleep, within_budget
from voiceticket_common.runtime_views import SCREENING_NO_REQUEST, TRANSCRIPTION_LOCAL, TranscriberView
from voiceticket_common.twilio import TwilioAccount

from .audio_prep import Part, SpeechCheck, Upload, UploadLimits, UploadPlan, plan_uploads, write_part
from .phantoms import without_phantoms
from .ports import (
    Recording,
    RecordingKey,
    RecordingSource,
    SpeechToTextTarget,
    Transcript,
    TranscriptionEngine,
    TranscriptLedger,
)
from .screening import SoundMeasure, measure_file, verdict
from .staging import AudioFile, Workspace, off_loop
from .vocabulary import prompt_for_part, vocabulary_prompt

log = logging.getLogger(__name__)


@dataclass
class TranscriberDeps:
    config: RuntimeConfig[TranscriberView]
    recordings: RecordingSource
    engine: TranscriptionEngine
    limits: UploadLimits = field(default_factory=UploadLimits)
    """The most one speech-to-text request takes at the tenant's OpenAI-compatible server."""
    local_limits: UploadLimits = field(default_factory=lambda: UploadLimits(16_000_000, 300.0))
    """The most the local engine decodes at once; longer recordings are split (``local_whisper``)."""
    speech: SpeechCheck = field(default_factory=SpeechCheck)
    budget: RetryBudget = field(default_factory=RetryBudget)
    sleep: Sleep = asyncio.sleep
    outcomes: TranscriptLedger | None = None
    """Where produced transcripts are kept for duplicates (ADR 8); None: every delivery transcribes."""


@dataclass(frozen=True)
class Transcription:
    text: str
    missing: bool = False
    """Speech-to-text stayed unavailable past the budget."""
    audio_seconds: float = 0.0
    """Seconds of audio speech-to-text was paid for (0 when it was skipped or failed)."""
    parts: int = 0
    model: str | None = None
    """The model the engine named (the local engine's); None: the target's."""
    language: str | None = None
    """The language the engine detected (the first part's), when it reports one."""
    language_probability: float | None = None
    segments: tuple[TranscriptSegment, ...] | None = None
    """Every part's segments, on the recording's timeline; None when the engine reports none."""


async def transcribe_recording(event: RecordingCompleted, deps: TranscriberDeps) -> Sequence[Event]:
    key = RecordingKey.of(event)
    if (stored := await stored_outcome(deps.outcomes, key, "transcript", "transcribing")) is not None:
        return [stored]
    config = await deps.config.line(event.line_number)
    line = config.line
    account = config.twilio_account(event.account_sid)
    target = speech_to_text_target(config, event.ivr_choice.language if event.ivr_choice else None)
    with Workspace.opened() as work:
        recording = await download(deps.recordings, account, event.recording_sid, work)
        audio_bytes = recording.size
        heard = None
        if event.screened is None:  # a caller ingress screened was counted there, and stays so
            sound = await off_loop(
                lambda stop: measure_file(recording, deps.speech, line.min_message_seconds, stop)
            )
            heard = verdict(sound, deps.speech, line.min_message_seconds) if sound is not None else None
            if heard is not None:
                call_screened(heard, line.screening_action, event.tenant_id)
                log.info(
                    "call screened", extra={"screened": heard, "screening_action": line.screening_action}
                )
                if line.screening_action == SCREENING_NO_REQUEST:
                    return [screened_call(event, heard, sound)]
        screened = event.screened or heard
        # Nothing worth paying speech-to-text for on a line that sets such calls apart: it would
        # only invent words for the silence or the tones.
        skip = line.screens_out and heard in (SCREENED_SILENCE, SCREENED_TONE)
        result = (
            Transcription("")
            if skip
            else await transcribe(recording, target, deps, event.duration_seconds, work)
        )
    cost = None
    model = result.model or target.model
    if result.audio_seconds and target.backend == TRANSCRIPTION_LOCAL:
        cost = 0.0  # no provider to pay
    elif result.audio_seconds:
        cost = record_transcription(event.tenant_id, model, result.audio_seconds)
    transcript, redactions, withheld = await redacted(result.text, config, None)
    log.info(
        "recording transcribed",
        extra={
            "audio_bytes": audio_bytes,
            "parts": result.parts,
            "backend": target.backend,
            "chars": len(result.text),
            "transcript_missing": result.missing,
            "redactions": redactions,
            "redaction_failed": withheld,
        },
    )
    outcome = CallTranscribed(
        **(event.call_context() | {"screened": screened}),
        recording_sid=event.recording_sid,
        duration_seconds=event.duration_seconds,
        transcript=transcript,
        language=result.language,  # what the engine heard (never forced, see speech_to_text_target)
        model=model,
        transcript_missing=result.missing,
        estimated_cost_usd=cost,
        redactions=redactions,
        redaction_failed=withheld,
        detected_language=result.language,
        detected_language_probability=result.language_probability,
        segments=list(result.segments) if result.segments is not None else None,
    )
    # A transcript missing because speech-to-text was down is kept only briefly (``final=False``).
    return [await kept_outcome(deps.outcomes, key, outcome, "transcript", final=not result.missing)]


def screened_call(event: RecordingCompleted, reason: str, sound: SoundMeasure | None) -> CallScreened:
    """The call ends here: its line makes no request for a recording screened so (``no_request``)."""
    return CallScreened(
        **(event.call_context() | {"screened": reason}),
        reason=reason,
        by="transcriber",
        recording_sid=event.recording_sid,
        duration_seconds=event.duration_seconds,
        sounding_seconds=round(sound.sounding_seconds, 2) if sound is not None else None,
        voice_seconds=round(sound.voice_seconds, 2) if sound is not None else None,
    )


async def redacted(
    text: str, config: TranscriberView, language: str | None
) -> tuple[str, dict[str, int], bool]:
    """(transcript, counts, withheld): the text redacted under the tenant's policy, or the withheld
    placeholder when it cannot be. ``language`` narrows the number words read to one language;
    None (what the handler passes: the caller may speak any) reads every language the engine knows."""

    if not text:
        return text, {}, False
    # CPU work, linear in the text: off the event loop like the audio preparation.
    result = await asyncio.to_thread(redact_or_none, config.tenant.redaction, text, language)
    if result is None:
        return WITHHELD_TRANSCRIPT, {}, True
    return result.text, result.record(), False


def speech_to_text_target(config: TranscriberView, chosen_language: str | None = None) -> SpeechToTextTarget:
    """The tenant's backend (``transcription_backend``: its OpenAI-compatible server, or the
    local engine, which needs no endpoint and names its own model), language and vocabulary.

    ``chosen_language``: the language of the option the caller chose in the line's IVR menu. The
    caller said which language they speak, so it is the engine's language hint."""

    vocabulary = vocabulary_prompt(config.tenant.vocabulary)
    backend = config.transcription_backend()
    local = backend == TRANSCRIPTION_LOCAL
    return SpeechToTextTarget(
        base_url="" if local else config.tenant.speech_to_text_base_url,
        api_key=SecretStr("") if local else config.speech_to_text_api_key(),
        model=TRANSCRIPTION_LOCAL if local else config.tenant.transcription_model,
        # Never the line's language, enforced or not: a caller may speak another one, and forcing it
        # would have speech-to-text write (or translate to) the wrong language. The analyzer writes
        # the ticket in the enforced language; the transcript stays in the caller's. Only a caller
        # who chose a language in the IVR menu has told us theirs.
        language=chosen_language,
        prompt=vocabulary,
        backend=backend,
        vocabulary=vocabulary,
    )


async def download(
    recordings: RecordingSource, account: TwilioAccount, recording_sid: str, work: Workspace
) -> AudioFile:
    """The recording, streamed from Twilio into a file of the workspace."""

    path = work.new_file("recording")
    with path.open("r+b") as file:
        content_type = await recordings.fetch(account, recording_sid, file)
    return AudioFile(path, content_type, "recording.wav")


async def transcribe(
    recording: AudioFile,
    target: SpeechToTextTarget,
    deps: TranscriberDeps,
    duration_seconds: float,
    work: Workspace,
) -> Transcription:
    # Measuring and re-encoding are CPU work: off the event loop, which other calls share.
    limits = deps.local_limits if target.backend == TRANSCRIPTION_LOCAL else deps.limits
    plan: UploadPlan = await off_loop(lambda stop: plan_uploads(recording, limits, deps.speech, work, stop))
    if not plan.uploads:
        log.info("no speech in the recording; speech-to-text skipped")
        return Transcription("")
    texts: list[str] = []
    heard: list[tuple[float, Transcript]] = []
    count = len(plan.uploads)
    for upload in plan.uploads:
        part_target = target if count == 1 else replace(target, prompt=_part_prompt(target, texts))
        file = await _upload_file(upload, work)
        try:
            transcript = await within_budget(
                lambda f=file, t=part_target: _send(deps.engine, f, t),  # type: ignore[misc]
                deps.budget,
                "speech-to-text",
                deps.sleep,
            )
        except BudgetExhausted:
            log.warning("speech-to-text unavailable past its retry budget; going on without a transcript")
            return Transcription("", missing=True, parts=count)
        finally:
            if isinstance(upload, Part):
                file.path.unlink()  # one part on disk at a time
        texts.append(without_phantoms(transcript.text))
        heard.append((_offset_seconds(upload), transcript))
    # Twilio's RecordingDuration is the length billed; the file's own length when it is missing.
    seconds = float(duration_seconds) or (plan.seconds or 0.0)
    return _combined(" ".join(t for t in texts if t), heard, seconds)


def _offset_seconds(upload: Upload) -> float:
    return upload.start / upload.samples.rate if isinstance(upload, Part) else 0.0


def _combined(text: str, heard: list[tuple[float, Transcript]], seconds: float) -> Transcription:
    """The parts' transcripts as one: the first detected language, segments on the recording's
    timeline (each part's shifted by where the part starts)."""

    first = heard[0][1]
    segments: tuple[TranscriptSegment, ...] | None = None
    if all(t.segments is not None for _, t in heard):
        segments = tuple(
            s.model_copy(
                update={
                    "start_seconds": round(s.start_seconds + offset, 2),
                    "end_seconds": round(s.end_seconds + offset, 2),
                }
            )
            for offset, t in heard
            for s in t.segments or ()
        )
    return Transcription(
        text,
        audio_seconds=seconds,
        parts=len(heard),
        model=first.model,
        language=first.language,
        language_probability=first.language_probability,
        segments=segments,
    )


async def _upload_file(upload: Upload, work: Workspace) -> AudioFile:
    if isinstance(upload, Part):
        return await off_loop(lambda stop: write_part(upload, work, stop))
    return upload


async def _send(engine: TranscriptionEngine, upload: AudioFile, target: SpeechToTextTarget) -> Transcript:
    """One attempt: the upload streamed from its file, opened afresh (a retry starts at byte 0)."""

    with upload.path.open("rb") as audio:
        recording = Recording(audio, upload.content_type, upload.filename, upload.path)
        return await engine.transcribe(recording, target)


def _part_prompt(target: SpeechToTextTarget, texts: list[str]) -> str | None:
    previous = next((t for t in reversed(texts) if t), "")
    return prompt_for_part(target.prompt, previous)
