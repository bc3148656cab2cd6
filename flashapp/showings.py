"""Showing tokens: the server's signed word that it put a card in front of a student, and when.

Showing a card writes nothing. The study page carries a token signed with the install's secret
key; the answer brings it back, and only what the token says counts: whose showing it is, which
card, when it was shown and which version of the card's state it was shown from. A client can
neither name another card nor stretch how long it looked at one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from .errors import DomainError, Forbidden, Invalid

# Keeps these signatures apart from every other use of the secret key (the session cookie, CSRF).
SALT = "flashapp.showing"
# How long a showing can be answered. Past it the card is simply shown again, with a fresh token.
LIFETIME = timedelta(hours=6)
# The longest a token can be: what the answer form accepts.
MAX_TOKEN_LENGTH = 400


class RefusedShowing(DomainError):
    """An answer's token is not one this server issued to this student, or no longer good."""


class ForgedShowing(RefusedShowing, Invalid):
    """The token was not signed by this server, or was changed since (400)."""


class OthersShowing(RefusedShowing, Forbidden):
    """The token was issued to another account (403)."""


class ExpiredShowing(RefusedShowing, Invalid):
    """The token is older than LIFETIME (400)."""


@dataclass(frozen=True)
class IssuedShowing:
    """What a verified token says about one showing of a card."""

    user_id: int
    card_id: int
    shown_ms: int  # when, in milliseconds since the epoch (UTC)
    stamp: str  # the version of the student's card state it was shown from (`scheduling.state_stamp`)
    nonce: str

    @property
    def key(self) -> str:
        """The showing's one-time key, kept as the review's unique token: one showing, at most one answer."""
        return f"{self.shown_ms:x}.{self.nonce}"

    def duration_ms(self, now: datetime) -> int:
        """Milliseconds from the showing to `now` (never negative; the scheduler caps the rest)."""
        return max(0, _epoch_ms(now) - self.shown_ms)


def _epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class ShowingTokens:
    """Issues and checks the tokens of showings, signed with one secret key."""

    def __init__(self, secret_key: str | bytes, *, lifetime: timedelta = LIFETIME) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)
        self._lifetime_ms = int(lifetime / timedelta(milliseconds=1))

    def issue(self, *, user_id: int, card_id: int, stamp: str, now: datetime) -> str:
        """A new token for showing this card to this user now, from the state version `stamp`."""
        payload = [user_id, card_id, _epoch_ms(now), stamp, secrets.token_urlsafe(12)]
        return self._serializer.dumps(payload)

    def read(self, token: str, *, user_id: int, now: datetime) -> IssuedShowing:
        """The showing a token stands for, if this server issued it to this user and it is still good.

        Raises ForgedShowing (not signed here, or altered), OthersShowing (issued to another
        account) or ExpiredShowing (older than the lifetime). Reads no database.
        """
        try:
            payload = self._serializer.loads(token)
        except BadData:
            raise ForgedShowing("That answer was not for a card this site showed you, so it was not recorded. "
                                "Here is the card to study now.") from None
        showing = _showing_from(payload)
        if showing is None:
            raise ForgedShowing("That answer could not be read, so it was not recorded. "
                                "Here is the card to study now.")
        if showing.user_id != user_id:
            raise OthersShowing("That card was shown to another account, so the answer was not recorded. "
                                "Here is your own card to study.")
        if _epoch_ms(now) - showing.shown_ms > self._lifetime_ms:
            hours = round(self._lifetime_ms / 3_600_000)
            raise ExpiredShowing(f"That card was shown more than {hours} hours ago, so the answer was not "
                                 "recorded. Here it is again.")
        return showing


def _showing_from(payload: object) -> IssuedShowing | None:
    """The showing in a verified payload, or None when its shape is not the one `issue` writes."""
    if not isinstance(payload, list) or len(payload) != 5:
        return None
    user_id, card_id, shown_ms, stamp, nonce = payload
    if not all(type(value) is int for value in (user_id, card_id, shown_ms)):
        return None
    if not isinstance(stamp, str) or not isinstance(nonce, str):
        return None
    return IssuedShowing(user_id, card_id, shown_ms, stamp, nonce)
