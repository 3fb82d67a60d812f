"""Errors that reach the user as a message, never as a traceback (exit status 2)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a scenario, a data file, a command-line value.

    The message names the file, the place (dotted field path, table and column), the bad value
    and what is allowed. The command line prints it and exits with status 2. ``messages`` holds
    several problems when a validation found more than one.
    """

    def __init__(self, message: str, messages: list[str] | None = None) -> None:
        super().__init__(message)
        self.messages = messages if messages is not None else [message]
