"""The one error type the CLI turns into a one-line message and exit status."""

from __future__ import annotations


class LsrError(Exception):
    """A user-facing error: printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
