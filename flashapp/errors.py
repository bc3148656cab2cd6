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


class NotSaved(Exception):
    """The database could not take a write just now; nothing was saved (503).

    Not a DomainError: nothing is wrong with the request, so a form never shows it beside a
    field. `message` is for the person in front of the page; `cause` says, for the log and the
    health check, what went wrong underneath and how to fix it.
    """

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


class Busy(NotSaved):
    """Other writes held the database for longer than a request waits; trying again soon works."""


class StorageFull(NotSaved):
    """The disk holding the database is full; saving resumes by itself once space is freed."""


class StorageReadOnly(NotSaved):
    """The database file or its folder cannot be written; someone has to make it writable."""
