"""The transcript ledger: the ``call.transcribed`` each recording produced, so that a duplicate
recording callback (Twilio's retries) or a redelivery re-emits it instead of paying for
speech-to-text again (ADR 8).

One row per (tenant, CallSid, RecordingSid), kept by ``voiceticket_common.ledger.OutcomeLedger``.
Rows hold personal data (the transcript, the caller's number) and expire: after ``retention``, or
after ``degraded_retention`` for a transcript that is missing because speech-to-text was down, so
a duplicate after the recovery transcribes again.
"""

from __future__ import annotations

from voiceticket_common.events import CallTranscribed
from voiceticket_common.ledger import OutcomeLedger, outcome_table

from .ports import RecordingKey

TranscriptRow = outcome_table("transcriber_outcomes", "recording_sid", 34)


class SqlTranscriptLedger(OutcomeLedger[RecordingKey, CallTranscribed]):
    service = "transcriber"  # its migrations: voiceticket_transcriber.migrations
    row = TranscriptRow
    event = CallTranscribed
    unreadable = "stored transcript unreadable; transcribing again"
