"""Flask-WTF forms: every form carries a CSRF token and validates its fields."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import ImmutableMultiDict
from wtforms import DateField, HiddenField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from ..accounts import MIN_PASSWORD_LENGTH, USERNAME_RE
from ..showings import MAX_TOKEN_LENGTH


def time_zone_choices() -> list[str]:
    return [*sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))), "UTC"]


def new_password_field(label: str, missing: str) -> PasswordField:
    return PasswordField(label, validators=[
        InputRequired(missing),
        Length(min=MIN_PASSWORD_LENGTH, max=200,
               message=f"A password needs at least {MIN_PASSWORD_LENGTH} characters."),
    ])


def confirm_password_field(label: str, missing: str) -> PasswordField:
    return PasswordField(label, validators=[
        InputRequired(missing),
        EqualTo("password", message="The two passwords differ."),
    ])


class RegisterForm(FlaskForm):
    username = StringField("Username", validators=[
        InputRequired("Choose a username."),
        Length(min=3, max=40, message="A username has 3 to 40 characters."),
        Regexp(USERNAME_RE, message="Use letters, digits, dots, hyphens and underscores only."),
    ])
    password = new_password_field("Password", "Choose a password.")
    confirm = confirm_password_field("Password again", "Type the password again.")
    time_zone = SelectField("Time zone", default="UTC")
    class_code = StringField("Class code (optional)", validators=[Optional(), Length(max=20)],
                             description="Your teacher gives you this code.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = [(zone, zone) for zone in time_zone_choices()]


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired("Enter your username.")])
    password = PasswordField("Password", validators=[InputRequired("Enter your password.")])


RATING_MESSAGE = "Choose Again, Hard, Good or Easy."


class RatingField(IntegerField):
    """A rating from 1 (Again) to 4 (Easy), with a message a student understands.

    Only a whole number is a rating: digits in a form, or an integer in a JSON body (not true,
    3.5 or a list), so that no value a client can send reaches the view as anything else.
    """

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        value = valuelist[0]
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) <= 8:
            self.data = int(value)
        elif type(value) is int:
            self.data = value
        else:
            self.data = None
            raise ValueError(RATING_MESSAGE)


class TextField(HiddenField):
    """A hidden text value that refuses anything but text (a JSON body can send numbers or lists)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and not isinstance(valuelist[0], str):
            self.data = None
            raise ValueError("This value must be text.")
        super().process_formdata(valuelist)


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired("Enter your current password.")])
    password = new_password_field("New password", "Choose a new password.")
    confirm = confirm_password_field("New password again", "Type the new password again.")


class AnswerForm(FlaskForm):
    """One answer: the showing's signed token (it names the card) and the rating; nothing else is read."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            # A JSON body that is not an object has no fields at all: every field is then missing.
            if request.is_json and not isinstance(request.get_json(silent=True), dict):
                return ImmutableMultiDict()
            return super().wrap_formdata(form, formdata)

    token = TextField(validators=[InputRequired("This answer carries no showing of a card."),
                                  Length(max=MAX_TOKEN_LENGTH, message="This answer's showing is not one of ours.")])
    rating = RatingField(validators=[InputRequired(RATING_MESSAGE),
                                     NumberRange(min=1, max=4, message="A rating is 1 to 4.")])


class EmptyForm(FlaskForm):
    """A form with only its CSRF token, for buttons such as log out and undo."""



class JoinForm(FlaskForm):
    code = StringField("Class code", validators=[InputRequired("Type the code your teacher gave you."),
                                                Length(max=20, message="A class code is 6 letters and digits.")])


class ClassForm(FlaskForm):
    name = StringField("Class name", validators=[
        InputRequired("Give the class a name."),
        Length(min=2, max=80, message="A class name has 2 to 80 characters."),
    ])


class AssignForm(FlaskForm):
    deck_id = SelectField("Deck", coerce=int, validators=[InputRequired("Choose a deck.")])
    target_date = DateField("Every card started by (optional)", validators=[Optional()])


class RetentionForm(FlaskForm):
    desired_retention = SelectField("Desired retention", default="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # 0.70 to 0.97 in hundredths; empty: the install's default.
        self.desired_retention.choices = [("", "The default"),
                                          *((f"0.{n}", f"0.{n}") for n in range(70, 98))]
