"""Errors a use case raises when it cannot do what it was asked; the web maps each to one status."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a message a user can act on."""

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The form field the message belongs beside, when the request came from a form.
        self.field = field


class NotFound(DomainError):
    """No such thing, or not one this user may know about (404)."""


class Forbidden(DomainError):
    """The thing exists but this user may not do this to it (403)."""


class Conflict(DomainError):
    """The request clashes with what is already there, such as a taken name (409)."""


class Invalid(DomainError):
    """A value is not acceptable; the message says what to change (400)."""


class TooManyAttempts(DomainError):
    """Refused for now because of repeated failures; waiting helps (429)."""
