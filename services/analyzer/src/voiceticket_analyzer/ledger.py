"""The analysis ledger: the ``call.analyzed`` each transcript produced, so that a duplicate
``call.transcribed`` (a duplicate recording callback upstream, or a redelivery) re-emits it instead
of paying for the language model again (ADR 8).

One row per (tenant, CallSid, transcript digest), kept by ``voiceticket_common.ledger.OutcomeLedger``.
Rows hold personal data (the transcript, the caller's number, extracted entities) and expire:
after ``retention``, or after ``degraded_retention`` for a triage analysis made because the model
was down or off-schema, so a duplicate after the recovery asks the model again.
"""

from __future__ import annotations

from voiceticket_common.events import CallAnalyzed
from voiceticket_common.ledger import OutcomeLedger, outcome_table

from .ports import AnalysisKey

AnalysisRow = outcome_table("analyzer_outcomes", "transcript_sha256", 64)


class SqlAnalysisLedger(OutcomeLedger[AnalysisKey, CallAnalyzed]):
    service = "analyzer"  # its migrations: voiceticket_analyzer.migrations
    row = AnalysisRow
    event = CallAnalyzed
    unreadable = "stored analysis unreadable; analysing again"
