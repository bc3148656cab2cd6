"""The selects whose drawings are kept draw exactly what WTForms' own select draws, whatever is chosen."""

from __future__ import annotations

import pytest
from wtforms.widgets import Select

from flashapp.web.forms import AssignForm, RegisterForm, RememberedSelect, RetentionForm, ReviewAheadForm

# Each form with a remembered select, the field, and choices to try it with (None: the form's own).
REMEMBERED = [
    (AssignForm, "deck_id", [[(1, "Back muscles"), (2, "Bones & <joints>")], [(1, "Back muscles")], []]),
    (RetentionForm, "desired_retention", [None]),
    (ReviewAheadForm, "days", [None]),
    (RegisterForm, "time_zone", [None]),
]


def _drawn_both_ways(field, **attributes):
    return str(field(**attributes)), str(Select()(field, **attributes))


@pytest.mark.parametrize(("form_class", "name", "choice_lists"), REMEMBERED, ids=[name for _, name, _ in REMEMBERED])
def test_a_remembered_select_draws_what_wtforms_draws_for_every_choice_and_attribute(app, form_class, name,
                                                                                      choice_lists):
    assert isinstance(getattr(form_class, name).kwargs["widget"], RememberedSelect)
    with app.test_request_context():
        for choices in choice_lists:
            # Twice over, so that the second time round each drawing comes from what was kept.
            for _ in range(2):
                form = form_class()
                field = getattr(form, name)
                if choices is not None:
                    field.choices = choices
                values = [value for value, _ in field.choices]
                for data in [None, *values[:3], values[-1] if values else None]:
                    field.data = data
                    for attributes in ({}, {"id": "other"}, {"class": "wide", "aria-describedby": "help"}):
                        remembered, plain = _drawn_both_ways(field, **attributes)
                        assert remembered == plain
                        if data is not None:
                            assert 'selected' in remembered


def test_a_changed_choice_list_or_choice_is_drawn_afresh(app):
    with app.test_request_context():
        form = AssignForm()
        form.deck_id.choices = [(1, "Back muscles"), (2, "Bones")]
        form.deck_id.data = 1
        first = str(form.deck_id())
        form.deck_id.choices = [(1, "Back muscles"), (2, "Bones"), (3, "Nerves")]
        assert "Nerves" in str(form.deck_id())
        form.deck_id.data = 2
        assert str(form.deck_id()).count("selected") == 1
        assert '<option selected value="2">' in str(form.deck_id())
        form.deck_id.choices = [(1, "Back muscles"), (2, "Bones")]
        form.deck_id.data = 1
        assert str(form.deck_id()) == first
