"""Local stand-ins for Twilio, OpenAI and Jira/JSM, and a Twilio caller simulator.

Test and demo tooling only: the services talk to these over real HTTP exactly as they would to the
providers. Every request is validated against the providers' official OpenAPI specs (vendored in
``contracts/``), recorded, and can be answered with injected faults.
"""

from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.caller import CallerSimulator, PlayedCall
from voiceticket_sandbox.contracts import preload_specs, validate_request
from voiceticket_sandbox.jira import create_jira_app
from voiceticket_sandbox.openai import create_openai_app
from voiceticket_sandbox.server import SandboxUrls, run_sandboxes
from voiceticket_sandbox.state import SandboxState
from voiceticket_sandbox.twilio import create_twilio_app

__all__ = [
    "CallerSimulator",
    "PlayedCall",
    "SandboxState",
    "SandboxUrls",
    "create_jira_app",
    "create_openai_app",
    "create_twilio_app",
    "make_tone_wav",
    "preload_specs",
    "run_sandboxes",
    "validate_request",
]
