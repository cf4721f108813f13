"""Language handling through the whole pipeline (issue #15, part 4), on the embedded runtime against
the spec-validating stand-ins.

- an enforced English line, a German caller: the caller is greeted in English, speech-to-text is
  never forced to a language, the request is written in English (the model asked to translate;
  the stand-in model marks its texts ``[en]``), the comment keeps the German transcript and names
  both languages, the SMS is the English template;
- the reverse: an enforced German line, an English caller: German greeting, German request, German SMS;
- an auto line (English default), a German caller: the request stays in German, unmarked, and the
  SMS is the German template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, one_ticket, sandboxed_runtime

from voiceticket.samples import sample_calls
from voiceticket_common import texts
from voiceticket_jira_writer.jira_text import wiki_text
from voiceticket_sandbox.demo_tenant import SUPPORT_LINE
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    mode: str
    line_language: str
    sample: str
    spoken: str
    written: str  # the request's language
    marker: str  # what the stand-in model puts before a translated text


CASES = {
    "german-caller-on-english-enforced-line": Case("enforced", "en", "drucker-de", "de", "en", "[en] "),
    "english-caller-on-german-enforced-line": Case("enforced", "de", "vpn-outage", "en", "de", "[de] "),
    "german-caller-on-auto-line": Case("auto", "en", "drucker-de", "de", "de", ""),
}


def line_in(case: Case) -> Any:
    def adapt(config: dict[str, Any]) -> None:
        [line] = config["lines"]
        line["language_mode"] = case.mode
        line["language"] = case.line_language
        del line["greeting"]  # the built-in greeting, in the line's language

    return adapt


async def transcription_requests(stack: SandboxedRuntime) -> list[dict[str, Any]]:
    records = (await stack.http.get(f"{stack.urls.openai}/_sandbox/requests")).json()
    return [r for r in records if r["path"] == "/v1/audio/transcriptions"]


@pytest.mark.parametrize("name", list(CASES))
async def test_the_request_is_in_the_language_the_line_says(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    sample = sample_calls()[case.sample]
    caller_number = new_caller()
    async with sandboxed_runtime(SandboxedRuntime, tmp_path, line_in(case)) as stack:
        call = await stack.caller().play_call(
            caller_number, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
        )
        assert call.voice_status == 200 and call.recording_status == 204
        issue = await one_ticket(stack, call.call_sid)

        async def sms() -> list[dict[str, Any]]:
            messages = (await stack.http.get(f"{stack.urls.twilio}/_sandbox/messages")).json()
            return [m for m in messages if m["to"] == caller_number]

        [message] = await eventually(sms, 30.0)
        [issue] = await stack.issues_of(call.call_sid)  # with its comment: the SMS follows it
        speech = await transcription_requests(stack)

    # the caller hears the line's language, whatever they speak
    assert texts.greeting(case.line_language) in call.twiml
    assert texts.recording_notice(case.line_language) in call.twiml
    assert f'voice="{texts.voice(case.line_language)}"' in call.twiml
    # speech-to-text detects the language: no request names one
    assert speech, "the recording was transcribed"
    for request in speech:
        assert "language" not in _form_fields(request), "speech-to-text is never forced to a language"

    fields = issue["requestFieldValues"]
    spoken_words = sample.transcript.split()[0]
    if case.marker:  # translated: the model was asked for the line's language and wrote in it
        assert fields["summary"].startswith(case.marker)
        assert fields["description"].startswith(wiki_text(case.marker))  # escaped for Jira
    else:  # the caller's own language, untranslated
        assert not fields["summary"].startswith("[")
        assert fields["description"].startswith(spoken_words)
    [comment] = [c for c in issue["comments"] if "Call transcript" in c["body"]]
    assert wiki_text(sample.transcript) in comment["body"], "the original-language transcript is kept"
    header = comment["body"].split("\n", 1)[0]
    assert f"spoken language: {case.spoken}" in header
    assert (f"request written in {case.written}" in header) == (case.spoken != case.written)
    call_property = issue["properties"]["voiceticket.call"]
    assert call_property["callSid"] == call.call_sid
    # the SMS is the template of the request's language
    expected = texts.sms_template(case.written).replace("{request_key}", issue["key"])
    assert message["body"].startswith(expected), message["body"]


def _form_fields(request: dict[str, Any]) -> dict[str, Any]:
    """The form fields of a recorded multipart request (as the stand-ins' recorder summarises it)."""
    body = request["body"]
    assert isinstance(body, dict) and "fields" in body, body
    fields: dict[str, Any] = body["fields"]
    return fields
