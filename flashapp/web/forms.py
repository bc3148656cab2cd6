"""Flask-WTF forms: every form carries a CSRF token and validates its fields.

Every form derives from `Form`, which reads only the form body (never JSON, never an uploaded file
for a text field), strips the spaces around one-line text and refuses control characters in every
text field, beside the field.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast
from zoneinfo import available_timezones

from flask import Request, request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from werkzeug.local import LocalProxy
from wtforms import (
    BooleanField,
    DateField,
    Field,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
)
from wtforms.widgets import Select

from ..accounts import (
    LONG_PASSWORD_MESSAGE,
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    MIN_PASSWORD_LENGTH,
    MIN_USERNAME_LENGTH,
    SHORT_PASSWORD_MESSAGE,
    check_username,
)
from ..classroom import MAX_CLASS_NAME_LENGTH, MIN_CLASS_NAME_LENGTH, check_class_name
from ..errors import Invalid
from ..showings import MAX_TOKEN_LENGTH
from ..study import REVIEW_AHEAD_DAYS
from ..text_input import has_control_characters

SUBMIT_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _refuse_control_characters(form: FlaskForm, field: Field) -> None:
    # Looks at what was sent, before stripping: "ann\n" is refused, not quietly stored as "ann".
    if any(isinstance(raw, str) and has_control_characters(raw) for raw in field.raw_data or ()):
        what = field.label.text.split(" (")[0]  # "Class code (optional)" -> "Class code"
        raise StopValidation(f"{what} cannot contain control characters "
                             "(such as a line break or a tab); type it on one line.")


def _refuse_control_characters_but_lines(form: FlaskForm, field: Field) -> None:
    # A text area holds several lines: line breaks and tabs are fine there, other control characters are not.
    if any(isinstance(raw, str) and has_control_characters(raw.replace("\n", "").replace("\r", "").replace("\t", ""))
           for raw in field.raw_data or ()):
        what = field.label.text.split(" (")[0]
        raise StopValidation(f"{what} holds control characters that text never has; paste plain text.")


def checked_by(check: Callable[[str], object]) -> Callable[[FlaskForm, Field], None]:
    """A validator that asks the domain's own check, so that the form and the use case agree."""

    def validate(form: FlaskForm, field: Field) -> None:
        try:
            check(field.data)
        except Invalid as error:
            raise StopValidation(error.message) from None

    return validate


class Form(FlaskForm):
    """The base of every form of the app."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            # Flask-WTF would also read a JSON body (where a value can be a number or a list) and mix
            # uploaded files in with the text fields. A form here reads its form body only.
            if formdata is None or hasattr(formdata, "getlist"):
                return formdata  # given by the caller
            if not request:
                return None
            asked = cast("LocalProxy[Request]", request)._get_current_object()  # one read through the proxy
            return (asked.form or None) if asked.method in SUBMIT_METHODS else None

        def bind_field(self, form: Any, unbound_field: Any, options: Any) -> Any:
            field = super().bind_field(form, unbound_field, options)
            if isinstance(field, TextAreaField):
                field.validators = [_refuse_control_characters_but_lines, *field.validators]
            elif isinstance(field, StringField):  # passwords and hidden fields are string fields too
                field.validators = [_refuse_control_characters, *field.validators]
                if not isinstance(field, PasswordField):
                    field.filters = (*field.filters, _strip)
            return field


class RememberedSelect(Select):
    """A select whose drawings are kept: each way of drawing it is rendered once.

    WTForms draws each option through its general attribute writer, about 11 µs an option: some 600 time
    zones took about 6 of the sign-up page's 7 ms, and the class page's lists of decks (the school's) and of
    29 retention levels 0.65 ms with 30 decks, against about 2.5 µs each once kept. What is drawn depends only
    on the field, its attributes, its choices and the chosen value, so a few dozen drawings are kept.
    """

    KEPT = 64

    def __init__(self) -> None:
        super().__init__()
        self._drawn: dict[tuple[object, ...], Markup] = {}

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        flags = getattr(field, "flags", None)
        key = (field.name, field.id, repr(sorted(kwargs.items())),
               tuple(bool(getattr(flags, name, False)) for name in self.validation_attrs),
               tuple(field.choices), field.data)
        drawn = self._drawn.get(key)
        if drawn is None:
            drawn = Markup(super().__call__(field, **kwargs))
            if len(self._drawn) >= self.KEPT:
                self._drawn.clear()
            self._drawn[key] = drawn
        return drawn


@lru_cache(maxsize=1)
def time_zone_choices() -> tuple[tuple[str, str], ...]:
    """The time zones a user may choose, as (value, label) pairs; read from the time zone database once."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return tuple((zone, zone) for zone in (*zones, "UTC"))


def new_password_field(label: str, missing: str) -> PasswordField:
    return PasswordField(label, validators=[
        InputRequired(missing),
        Length(min=MIN_PASSWORD_LENGTH, message=SHORT_PASSWORD_MESSAGE),
        Length(max=MAX_PASSWORD_LENGTH, message=LONG_PASSWORD_MESSAGE),
    ])


def confirm_password_field(label: str, missing: str) -> PasswordField:
    return PasswordField(label, validators=[
        InputRequired(missing),
        EqualTo("password", message="The two passwords differ."),
    ])


class RegisterForm(Form):
    username = StringField("Username", validators=[
        DataRequired("Choose a username."),
        Length(min=MIN_USERNAME_LENGTH, max=MAX_USERNAME_LENGTH,
               message=f"A username has {MIN_USERNAME_LENGTH} to {MAX_USERNAME_LENGTH} characters."),
        checked_by(check_username),
    ])
    password = new_password_field("Password", "Choose a password.")
    confirm = confirm_password_field("Password again", "Type the password again.")
    time_zone = SelectField("Time zone", default="UTC", widget=RememberedSelect())
    class_code = StringField("Class code (optional)", validators=[
        Optional(), Length(max=20, message="A class code is 6 letters and digits.")],
        description="Your teacher gives you this code.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = list(time_zone_choices())


class LoginForm(Form):
    username = StringField("Username", validators=[
        DataRequired("Enter your username."),
        Length(max=MAX_USERNAME_LENGTH, message=f"A username has at most {MAX_USERNAME_LENGTH} characters."),
    ])
    password = PasswordField("Password", validators=[
        InputRequired("Enter your password."),
        Length(max=MAX_PASSWORD_LENGTH, message=LONG_PASSWORD_MESSAGE),
    ])


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


class ChangePasswordForm(Form):
    current = PasswordField("Current password", validators=[
        InputRequired("Enter your current password."),
        Length(max=MAX_PASSWORD_LENGTH, message="That is not your current password."),
    ])
    password = new_password_field("New password", "Choose a new password.")
    confirm = confirm_password_field("New password again", "Type the new password again.")


class AnswerForm(Form):
    """One answer: the showing's signed token (it names the card) and the rating; nothing else is read."""

    class Meta(Form.Meta):
        # CSRFProtect has checked the token of every POST before any view runs, and the study card draws it
        # with `csrf_token()`: a field of its own would check it again and sign a fresh one per answer.
        csrf = False

    token = TextField(validators=[InputRequired("This answer carries no showing of a card."),
                                  Length(max=MAX_TOKEN_LENGTH, message="This answer's showing is not one of ours.")])
    rating = RatingField(validators=[InputRequired(RATING_MESSAGE),
                                     NumberRange(min=1, max=4, message="A rating is 1 to 4.")])


class EmptyForm(Form):
    """A form with only its CSRF token, for buttons such as log out and undo."""


class JoinForm(Form):
    code = StringField("Class code", validators=[DataRequired("Type the code your teacher gave you."),
                                                Length(max=20, message="A class code is 6 letters and digits.")])


class ClassForm(Form):
    name = StringField("Class name", validators=[
        DataRequired("Give the class a name."),
        Length(min=MIN_CLASS_NAME_LENGTH, max=MAX_CLASS_NAME_LENGTH,
               message=f"A class name has {MIN_CLASS_NAME_LENGTH} to {MAX_CLASS_NAME_LENGTH} characters."),
        checked_by(check_class_name),
    ])


class AssignForm(Form):
    deck_id = SelectField("Deck", coerce=int, validators=[InputRequired("Choose a deck.")], widget=RememberedSelect())
    target_date = DateField("Every card started by (optional)", validators=[Optional()])


class ReviewAheadForm(Form):
    days = SelectField("Review ahead", coerce=int, validators=[InputRequired("Choose how many days ahead to review.")],
                       widget=RememberedSelect())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The choices the done screen offers; anything else is refused as not a valid choice.
        self.days.choices = [(days, f"{days} day{'' if days == 1 else 's'}") for days in REVIEW_AHEAD_DAYS]


class RetentionForm(Form):
    desired_retention = SelectField("Desired retention", default="", widget=RememberedSelect())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # 0.70 to 0.97 in hundredths; empty: the install's default.
        self.desired_retention.choices = [("", "The default"),
                                          *((f"0.{n}", f"0.{n}") for n in range(70, 98))]


class AnkiUploadForm(Form):
    """An Anki export to bring reviews back from. Only its file field reads the uploaded files."""

    file = FileField("Anki export (.apkg or .colpkg)", validators=[
        FileRequired("Choose the file you exported from Anki (.apkg or .colpkg).")],
        render_kw={"accept": ".apkg,.colpkg"})

    class Meta(Form.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            fields = super().wrap_formdata(form, formdata)
            if formdata is None or hasattr(formdata, "getlist") or not request or request.method not in SUBMIT_METHODS:
                return fields  # given by the caller, or nothing sent
            uploads = request.files.getlist("file")
            if not uploads:
                return fields
            return CombinedMultiDict([request.form, MultiDict([("file", upload) for upload in uploads])])


class DocumentForm(Form):
    """A new deck's document: its title and citation, and its text pasted (the file comes as an upload)."""

    title = StringField("Deck title", validators=[Length(max=200, message="A title has at most 200 characters.")],
                        description="Shown to students, e.g. “The water cycle”.")
    citation = StringField("Citation of the document", validators=[
        Length(max=2000, message="A citation has at most 2,000 characters.")],
        description="Author or publisher, title, date: where the facts come from.")
    text = TextAreaField("Paste the text (or upload a file below)", validators=[Optional()],
                         description="Lines starting with # are headings.")


class FactForm(Form):
    """One fact written against a sentence of a document."""

    relation = SelectField("Relation", validators=[InputRequired("Choose a relation.")])
    subject = StringField("Subject", description="For a cloze fact: the sentence, as the student will read it.")
    object = StringField("Object", description="For a cloze fact: the words to hide, exactly as the sentence has "
                                               "them.")
    explanation = StringField("Explanation (optional)", validators=[Optional()])
    supplemented = BooleanField("Supplemented: the document does not state this fact")
    sentence = TextField()


class RelationForm(Form):
    """The question templates of one relation of a deck."""

    forward = StringField("Question (uses {subject})", validators=[Optional()])
    reverse = StringField("Reverse question (optional, uses {object})", validators=[Optional()])
    grouped = StringField("Grouped question (optional, uses {object})", validators=[Optional()])
    cloze = StringField("Cloze question (uses {subject}: the sentence with the gap)", validators=[Optional()])
    answer = StringField("Answer (optional, uses {object} and {subject})", validators=[Optional()])


class ImportForm(Form):
    """Facts from a table: the file's kind, then which column holds what (the table rides along, encoded)."""

    format = SelectField("Kind of file", default="table")
    table = TextField()
    filename = TextField()
    subject = SelectField("Subject column", validate_choice=False)
    object = SelectField("Object column", validate_choice=False)
    relation_column = SelectField("Relation column (optional)", validate_choice=False)
    relation = SelectField("Or one relation for every row", validate_choice=False)
    explanation = SelectField("Explanation column (optional)", validate_choice=False)
    supplemented = SelectField("Supplemented column (optional)", validate_choice=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.format.choices = [("table", "CSV or TSV with a header row"), ("anki", "Anki notes in plain text (.txt)")]
