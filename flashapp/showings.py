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

from itsdangerous import BadData, BadSignature, Signer, URLSafeSerializer

from .errors import DomainError, Forbidden, Invalid

# Keeps these signatures apart from every other use of the secret key (the session cookie, CSRF).
SALT = "flashapp.showing.2"
# The salt of the tokens of earlier versions (signed JSON), still read while they can be answered.
EARLIER_SALT = "flashapp.showing"
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
    """Issues and checks the tokens of showings, signed with one secret key.

    A token is its fields as text, `user.card.shown_ms.nonce.stamp`, and their signature
    (itsdangerous's `Signer`). Signing plain text rather than serialized JSON spares the study
    page compressing and encoding what is a few numbers: about a twentieth of a study cycle.
    """

    def __init__(self, secret_key: str | bytes, *, lifetime: timedelta = LIFETIME) -> None:
        self._signer = Signer(secret_key, salt=SALT)
        self._earlier = URLSafeSerializer(secret_key, salt=EARLIER_SALT)
        self._lifetime_ms = int(lifetime / timedelta(milliseconds=1))

    def issue(self, *, user_id: int, card_id: int, stamp: str, now: datetime) -> str:
        """A new token for showing this card to this user now, from the state version `stamp`."""
        fields = f"{user_id}.{card_id}.{_epoch_ms(now)}.{secrets.token_urlsafe(12)}.{stamp}"
        return self._signer.sign(fields).decode("ascii")

    def read(self, token: str, *, user_id: int, now: datetime) -> IssuedShowing:
        """The showing a token stands for, if this server issued it to this user and it is still good.

        Raises ForgedShowing (not signed here, or altered), OthersShowing (issued to another
        account) or ExpiredShowing (older than the lifetime). Reads no database.
        """
        try:
            showing = _showing_in(self._signer.unsign(token).decode("ascii"))
        except BadSignature:
            showing = self._earlier_showing(token)
        except UnicodeDecodeError:
            showing = None  # only `issue` signs under this salt, and it writes ASCII; kept as a refusal regardless
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

    def _earlier_showing(self, token: str) -> IssuedShowing | None:
        """A token signed by an earlier version (JSON), so that a page open across an upgrade still answers."""
        try:
            payload = self._earlier.loads(token)
        except BadData:
            raise ForgedShowing("That answer was not for a card this site showed you, so it was not recorded. "
                                "Here is the card to study now.") from None
        return _showing_from(payload)


def _number(text: str) -> int | None:
    """A whole number written in ASCII digits, as `issue` writes one; None for anything else."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def _showing_in(fields: str) -> IssuedShowing | None:
    """The showing in verified text, or None when it is not of the form `issue` writes."""
    parts = fields.split(".", 4)
    if len(parts) != 5:
        return None
    user_id, card_id, shown_ms = (_number(part) for part in parts[:3])
    if user_id is None or card_id is None or shown_ms is None:
        return None
    return IssuedShowing(user_id, card_id, shown_ms, parts[4], parts[3])


def _showing_from(payload: object) -> IssuedShowing | None:
    """The showing in a verified earlier payload, or None when its shape is not the one earlier versions wrote."""
    if not isinstance(payload, list) or len(payload) != 5:
        return None
    user_id, card_id, shown_ms, stamp, nonce = payload
    if not all(type(value) is int for value in (user_id, card_id, shown_ms)):
        return None
    if not isinstance(stamp, str) or not isinstance(nonce, str):
        return None
    return IssuedShowing(user_id, card_id, shown_ms, stamp, nonce)
