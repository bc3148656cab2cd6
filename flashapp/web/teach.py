"""The teacher's side: classes, join codes, assignments, the dashboard, student care, exports."""

from __future__ import annotations

from datetime import tzinfo
from urllib.parse import urlsplit

import segno
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from werkzeug.wrappers import Response as BaseResponse

from .. import classroom as classes
from .. import exports, teaching, trouble
from ..backup_schedule import backup_health
from ..errors import Invalid
from ..history import history_query
from ..models import Classroom, User
from ..network import is_loopback, lan_addresses
from ..retention import set_class_retention
from ..scheduling import zone
from ..stats import CardRow, RosterRow
from .charts import page_context
from .forms import AssignForm, ClassForm, EmptyForm, RetentionForm
from .helpers import (
    Question,
    bar,
    confirm_page,
    download,
    hash_method,
    listening,
    now,
    paginate,
    percent,
    required,
    scheduler,
    session,
    study_settings,
    teacher_required,
    user_id,
)

bp = Blueprint("teach", __name__, url_prefix="/teach")


def _back_to_class(class_id: int) -> BaseResponse:
    return redirect(url_for("teach.dashboard", class_id=class_id), code=303)


@bp.route("/", methods=["GET", "POST"], endpoint="classes")
@teacher_required
def classes_page() -> BaseResponse | tuple[str, int]:
    """The teacher's classes, and a form to start a new one."""
    form = ClassForm()
    if form.validate_on_submit():
        classroom = classes.start_class(session(), teacher_id=user_id(), name=required(form.name.data))
        flash(f"Class “{classroom.name}” created. Students join with the code {classroom.join_code}.", "success")
        return redirect(url_for("teach.dashboard", class_id=classroom.id))
    return render_template("teach/classes.html", classrooms=classes.teachers_classrooms(session(), user_id()),
                           form=form, backup_failure=backup_health(current_app).failure), 400 if form.errors else 200


def _assign_form() -> AssignForm:
    form = AssignForm()
    form.deck_id.choices = classes.deck_choices(session(), teacher_id=user_id())
    return form


def _reachability() -> tuple[list[str], bool]:
    """The addresses students should open, and whether only this computer can reach the server."""
    addresses = join_addresses()
    served = listening()
    serving_locally = served is not None and served.local_only
    unreachable = all(is_loopback(urlsplit(address).hostname or "") for address in addresses)
    return addresses, serving_locally or unreachable


@bp.route("/classes/<int:class_id>")
@teacher_required
def dashboard(class_id: int) -> str:
    """A class at a glance: who is keeping up, and which facts the class is forgetting."""
    at = now()
    board = teaching.dashboard(session(), scheduler(), teacher_id=user_id(), class_id=class_id, now=at,
                               sort=request.args.get("sort"), direction=request.args.get("dir"))
    # One URL built for the whole roster: building one per student costs more than the rest of the row.
    student_path = url_for("teach.student", class_id=class_id, user_id=0).rpartition("/")[0]
    card_path = url_for("teach.card", class_id=class_id, card_id=0).rpartition("/")[0]  # likewise for the cards
    addresses, local_only = _reachability()
    return render_template("teach/dashboard.html", classroom=board.classroom, roster=board.roster,
                           student_path=student_path, card_path=card_path, trouble=board.trouble, sort=board.sort,
                           descending=board.descending, completion=board.completion, studying_now=board.studying_now,
                           assign_form=_assign_form(), action_form=EmptyForm(), now=at,
                           tz=zone(current_user.time_zone), addresses=addresses, local_only=local_only,
                           min_answers=trouble.MIN_ANSWERS, again_line=trouble.AGAIN_LINE,
                           recall_line=trouble.RECALL_LINE, retention_form=_retention_form(board.classroom))


@bp.app_template_global()
def roster_rows(roster: list[RosterRow], student_path: str, tz: tzinfo) -> Markup:
    """The roster's table rows, one per student.

    Written here rather than in the template: a class of 300 draws 300 rows, and a row's two dozen
    template expressions (each value escaped and wrapped on its own) cost more than the row's numbers.
    Every text a user wrote (names, deck titles in the reasons) is escaped here.
    """
    path = escape(student_path)
    rows = []
    for r in roster:
        name = escape(r.username)
        retention = r.retention_30d
        if retention is not None:
            retained = f'{percent(retention)}\n          <span class="hint">of {r.review_answers_30d}</span>'
        elif r.reviews_7d or r.introduced:
            retained = '<span class="hint retention-none">no reviews of learned cards yet</span>'
        else:
            retained = "–"
        active = r.last_active.astimezone(tz).strftime("%d %b, %H:%M") if r.last_active else "never"
        look = "".join(f'<span class="pill warn">{escape(reason)}</span> ' for reason in r.behind) \
            if r.behind else '<span class="hint">—</span>'
        model = (f'personal <span class="hint">since {r.personal_since.astimezone(tz).strftime("%d %b")}</span>'
                 if r.personal_since else "defaults")
        rows.append(
            f'<tr class="{"behind" if r.behind else ""}">\n'
            f'        <td class="who-cell"><a href="{path}/{r.user_id}">{name}</a>\n'
            f'          <a class="stats-link" href="{path}/{r.user_id}/stats">Statistics'
            f'<span class="sr-only"> of {name}</span></a></td>\n'
            f'        <td class="progress-cell" data-label="Cards started">'
            f'{bar(r.introduced_share, f"{r.introduced} of {r.total} cards started")}\n'
            f'          <span class="num">{r.introduced} / {r.total}</span></td>\n'
            f'        <td class="num" data-label="Reviews, 7 days">{r.reviews_7d}</td>\n'
            f'        <td class="num" data-label="Retention, 30 days">{retained}</td>\n'
            f'        <td class="num" data-label="Due now">{r.due_now}</td>\n'
            f'        <td class="when" data-label="Last active">{active}</td>\n'
            f'        <td class="look-cell" data-label="Needs a look">{look}</td>\n'
            f'        <td data-label="FSRS">{model}</td>\n'
            f'      </tr>')
    return Markup("\n      ".join(rows))


@bp.app_template_global()
def answered_rows(cards: list[CardRow], card_path: str) -> Markup:
    """The table rows of every card the class has answered, one per card (written here, as the roster's are).

    A deck of 300 cards draws 300 rows; the card's question and answer are escaped here.
    """
    path = escape(card_path)
    return Markup("\n        ".join(
        f'<tr>\n'
        f'          <td><a href="{path}/{c.card_id}">{escape(c.question)}</a>\n'
        f'            <span class="deck-name">{escape(c.answer)}</span></td>\n'
        f'          <td class="num">{percent(c.mean_recall)}</td>\n'
        f'          <td class="num">{c.students}</td>\n'
        f'          <td class="num">{c.reviews}</td>\n'
        f'          <td class="num">{percent(c.again_rate)}</td>\n'
        f'        </tr>' for c in cards))


def _retention_form(classroom: Classroom) -> RetentionForm:
    value = classroom.desired_retention
    return RetentionForm(desired_retention="" if value is None else f"{value:.2f}")


@bp.route("/classes/<int:class_id>/retention", methods=["POST"])
@teacher_required
def class_retention(class_id: int) -> BaseResponse:
    """Set the class's default desired retention (students who chose their own keep it)."""
    form = RetentionForm()
    classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)  # another's class: 404
    if form.validate_on_submit():
        chosen = form.desired_retention.data
        try:
            set_class_retention(session(), teacher_id=user_id(), class_id=class_id,
                                desired_retention=float(chosen) if chosen else None)
        except Invalid as error:
            flash(f"Nothing was changed: {error.message}", "error")
        else:
            flash("Default desired retention saved; it applies from each student's next answer.", "success")
    else:
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        flash(f"Nothing was changed: {problems}", "error")
    return _back_to_class(class_id)


@bp.app_template_global()
def replacing_the_code(classroom: Classroom) -> Question:
    return Question(f"Replace the join code of {classroom.name}?",
                    f"The code {classroom.join_code} stops working at once: students who have not joined yet "
                    "need the new one. Students already in the class stay in it.", "Replace the code")


@bp.app_template_global()
def resetting_the_password(pupil: User) -> Question:
    return Question(f"Reset {pupil.username}'s password?",
                    f"{pupil.username} is logged out on every device. You get a temporary password to give "
                    "them, shown once; they choose a new one when they log in with it.", "Reset the password")


@bp.app_template_global()
def removing_from_class(classroom: Classroom, pupil: User) -> Question:
    return Question(f"Remove {pupil.username} from {classroom.name}?",
                    f"{pupil.username} leaves the class's roster. Their account and their review history stay; "
                    "they can join again with the class's code.", f"Remove from {classroom.name}")


@bp.route("/classes/<int:class_id>/code", methods=["GET", "POST"])
@teacher_required
def new_code(class_id: int) -> BaseResponse | str:
    """Replace the class's join code (after asking); the old code stops working."""
    classroom = classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)  # another's class: 404
    if request.method == "GET":
        return confirm_page(replacing_the_code(classroom), cancel=url_for("teach.dashboard", class_id=class_id))
    if EmptyForm().validate_on_submit():
        code = classes.new_join_code(session(), teacher_id=user_id(), class_id=class_id)
        flash(f"New join code: {code}. The old code no longer works.", "success")
    return _back_to_class(class_id)


@bp.route("/classes/<int:class_id>/assignments", methods=["POST"])
@teacher_required
def assign(class_id: int) -> BaseResponse:
    """Assign a deck to the class, optionally with a target date."""
    form = _assign_form()
    if form.validate_on_submit():
        classes.assign(session(), teacher_id=user_id(), class_id=class_id, deck_id=required(form.deck_id.data),
                       target_date=form.target_date.data)
        flash("Deck assigned.", "success")
    else:
        classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)  # another's class: 404
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        flash(f"Nothing was assigned: {problems}", "error")
    return _back_to_class(class_id)


@bp.route("/classes/<int:class_id>/assignments/<int:deck_id>/remove", methods=["POST"])
@teacher_required
def unassign(class_id: int, deck_id: int) -> BaseResponse:
    """Stop assigning a deck to the class (nobody's progress is touched)."""
    if EmptyForm().validate_on_submit():
        classes.unassign(session(), teacher_id=user_id(), class_id=class_id, deck_id=deck_id)
        flash("Deck no longer assigned. Students keep their progress.", "info")
    else:
        classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)  # another's class: 404
    return _back_to_class(class_id)


def join_addresses() -> list[str]:
    """The addresses students should open: the one this browser used, unless only this machine can use it."""
    here = urlsplit(request.host_url)
    if not is_loopback(here.hostname or ""):
        return [request.host_url]
    port = f":{here.port}" if here.port else ""
    return [f"{here.scheme}://{address}{port}/" for address in lan_addresses()] or [request.host_url]


@bp.route("/classes/<int:class_id>/join")
@teacher_required
def join_poster(class_id: int) -> str:
    """A page to project: the address, the join code in large type, and a QR code."""
    classroom = classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)
    addresses = join_addresses()
    target = addresses[0].rstrip("/") + url_for("classes.join", code=classroom.join_code)
    # Sized by its viewBox alone, so that the page's CSS scales the whole code down on a phone.
    svg = segno.make(target, error="m").svg_inline(scale=8, border=2, dark="#1f2733", light="#ffffff",
                                                   omitsize=True)
    return render_template("teach/join_poster.html", classroom=classroom, addresses=addresses, target=target,
                           qr=Markup(svg))


@bp.route("/classes/<int:class_id>/students/<int:user_id>")
@teacher_required
def student(class_id: int, user_id: int) -> str:
    """One student's progress and history, for the teachers of their classes."""
    view = teaching.student_view(session(), teacher_id=current_user.id, class_id=class_id, user_id=user_id,
                                 now=now())
    pagination = paginate(history_query(view.student.id), page=request.args.get("page", 1, type=int),
                          per_page=current_app.config["HISTORY_PAGE_SIZE"])
    return render_template("teach/student.html", classroom=view.classroom, pupil=view.student,
                           progress=view.progress, pagination=pagination, tz=zone(current_user.time_zone),
                           action_form=EmptyForm())


@bp.route("/classes/<int:class_id>/students/<int:user_id>/stats")
@teacher_required
def student_stats(class_id: int, user_id: int) -> str:
    """One student's statistics page, for the teachers of their classes."""
    classroom, pupil, page = teaching.student_statistics(
        session(), scheduler(), teacher_id=current_user.id, class_id=class_id, user_id=user_id, now=now(),
        day_starts_at_hour=study_settings().day_starts_at_hour, deck_slug=request.args.get("deck") or None,
        period=request.args.get("period"))
    return render_template("teach/student_stats.html", **page_context(page), pupil=pupil, classroom=classroom)


@bp.route("/classes/<int:class_id>/students/<int:user_id>/password", methods=["GET", "POST"])
@teacher_required
def reset_student_password(class_id: int, user_id: int) -> Response | str:
    """Give a student a temporary password (after asking), shown once; they choose a new one at their next log-in."""
    classroom, pupil = classes.enrolled_student(session(), teacher_id=current_user.id, class_id=class_id,
                                                user_id=user_id)
    if request.method == "GET":
        return confirm_page(resetting_the_password(pupil),
                        cancel=url_for("teach.student", class_id=class_id, user_id=user_id))
    if not EmptyForm().validate_on_submit():
        abort(400)
    temporary = classes.reset_student_password(session(), teacher_id=current_user.id, class_id=class_id,
                                               user_id=user_id, method=hash_method())
    response = Response(render_template("teach/temporary_password.html", classroom=classroom, pupil=pupil,
                                        temporary=temporary))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/classes/<int:class_id>/students/<int:user_id>/remove", methods=["GET", "POST"])
@teacher_required
def remove(class_id: int, user_id: int) -> BaseResponse | str:
    """Take a student out of the class (after asking); their account and history stay."""
    classroom, pupil = classes.enrolled_student(session(), teacher_id=current_user.id, class_id=class_id,
                                                user_id=user_id)
    if request.method == "GET":
        return confirm_page(removing_from_class(classroom, pupil),
                        cancel=url_for("teach.student", class_id=class_id, user_id=user_id))
    if EmptyForm().validate_on_submit():
        classes.remove_from_class(session(), teacher_id=current_user.id, class_id=class_id, user_id=user_id)
        flash(f"{pupil.username} is no longer in {classroom.name}. Their history is kept.", "info")
    return _back_to_class(class_id)


@bp.route("/classes/<int:class_id>/cards/<int:card_id>")
@teacher_required
def card(class_id: int, card_id: int) -> str:
    """One card, the fact behind it, and how the class is doing on it."""
    view = teaching.card_view(session(), scheduler(), teacher_id=user_id(), class_id=class_id, card_id=card_id,
                              now=now())
    return render_template("teach/card.html", classroom=view.classroom, card=view.card, note=view.card.note,
                           stats=view.stats, missed_by=view.missed_by, fact_sentence=view.fact,
                           section_title=view.section_title)


def _file_name(class_name: str, kind: str) -> str:
    return exports.class_file_name(class_name, kind, day=now().astimezone(zone(current_user.time_zone)).date())


@bp.route("/classes/<int:class_id>/progress.csv")
@teacher_required
def progress_csv(class_id: int) -> Response:
    """The roster as CSV."""
    classroom = classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)
    return download(exports.class_progress_csv(session(), classroom_id=classroom.id, now=now()),
                    filename=_file_name(classroom.name, "progress"), mimetype="text/csv")


@bp.route("/classes/<int:class_id>/revlog.csv")
@teacher_required
def revlog_csv(class_id: int) -> Response:
    """The class's review history in the FSRS optimiser's revlog layout."""
    classroom = classes.own_classroom(session(), teacher_id=user_id(), class_id=class_id)
    hour = study_settings().day_starts_at_hour
    return download(exports.class_revlog_csv(session(), classroom_id=classroom.id, day_starts_at_hour=hour),
                    filename=_file_name(classroom.name, "revlog"), mimetype="text/csv")
