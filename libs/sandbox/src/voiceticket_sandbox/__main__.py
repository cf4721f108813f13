"""``python -m voiceticket_sandbox serve ...``: run the provider stand-ins."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from voiceticket_sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m voiceticket_sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the Twilio, OpenAI and Jira stand-ins in one process")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--twilio-port", type=int, default=0)
    run.add_argument("--openai-port", type=int, default=0)
    run.add_argument("--jira-port", type=int, default=0)
    run.add_argument("--ready-file", type=Path, help="write the JSON line of base URLs here too")
    run.add_argument("--log-level", default="WARNING")
    run.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the OpenAPI validation of requests (benchmarks; the tests keep it on)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    ports = (args.twilio_port, args.openai_port, args.jira_port)
    asyncio.run(serve(args.host, ports, args.ready_file, validate=not args.no_validate))


if __name__ == "__main__":
    main()
