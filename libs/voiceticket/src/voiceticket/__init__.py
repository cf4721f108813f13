"""Voice to Ticket: the ``voiceticket`` command and the embedded single-process runtime."""
