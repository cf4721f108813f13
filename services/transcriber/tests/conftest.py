from voiceticket_sandbox.testing import sandbox, specs  # noqa: F401 - fixtures
