"""Alembic's env.py for every service's migrations: the runner in voiceticket_common.migrations."""

from voiceticket_common.migrations import run_env

run_env()
