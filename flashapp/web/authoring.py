"""A teacher's own decks, written in the browser: a document, facts from its sentences, preview, publish."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from .. import authoring
from .. import classroom as classes
from ..documents import ACCEPTED, DocumentError, file_kind
from ..errors import Invalid
from ..facts_io import (
    ColumnMapping,
    FactsImportError,
    PreviewRow,
    Table,
    check_mapping,
    deck_spec_to_yaml,
    facts_from_table,
    guess_mapping,
    preview_import,
    read_anki_notes_text,
    read_table,
)
from ..models import AuthoredFact, Document
from .forms import DocumentForm, EmptyForm, FactForm, ImportForm, RelationForm
from .helpers import Question, confirm_page, now, session, teacher_required, user_id

bp = Blueprint("authoring", __name__, url_prefix="/teach/decks")

Page = str | tuple[str, int]


def _limits() -> authoring.DocumentLimits:
    defaults = authoring.DocumentLimits()
    return authoring.DocumentLimits(
        document_max_bytes=int(current_app.config.get("DOCUMENT_MAX_BYTES", defaults.document_max_bytes)))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _document(document_id: int) -> Document:
    return authoring.own_document(session(), teacher_id=user_id(), document_id=document_id)


def _beside(form: DocumentForm | FactForm | RelationForm, error: Invalid, *, default: str) -> None:
    """Put a domain error's message beside its field (or beside `default` when it names none)."""
    field = getattr(form, error.field or default, None) or getattr(form, default)
    field.errors = [*field.errors, error.message]


@bp.route("/", methods=["GET", "POST"])
@teacher_required
def decks() -> Page | BaseResponse:
    """The teacher's own decks, the bundled ones (read-only), and "New deck": a document pasted or uploaded."""
    upload_errors: list[str] = []
    form = DocumentForm()
    if form.validate_on_submit():
        upload = request.files.get("file")
        try:
            if upload is not None and upload.filename:
                name = upload.filename
                try:
                    data = upload.read(_limits().document_max_bytes + 1)  # one byte more tells it is too large
                finally:
                    upload.close()  # a large upload waits in a temporary file: let it go now
                kind = file_kind(name)
                if form.text.data and form.text.data.strip():
                    raise Invalid("Paste the text or upload a file, not both.", field="document")
            else:
                kind, data, name = "markdown", (form.text.data or "").encode("utf-8"), ""
            document = authoring.create_document(session(), owner_id=user_id(), title=form.title.data,
                                                 citation=form.citation.data, kind=kind, data=data, file_name=name,
                                                 limits=_limits(), now=now())
        except DocumentError as error:
            upload_errors.append(error.message)
        except Invalid as error:
            if error.field == "document":
                upload_errors.append(error.message)
            else:
                _beside(form, error, default="title")
        else:
            flash(f"“{document.title}” is stored with {_count(len(document.sentences), 'sentence')}. Pick a sentence "
                  "to write a fact from it.", "success")
            return redirect(url_for("authoring.document", document_id=document.id), code=303)
    return _decks_page(form, upload_errors), 400 if form.errors or upload_errors else 200


@bp.errorhandler(413)
def _too_large(error: HTTPException) -> tuple[str, int]:
    """An upload past MAX_CONTENT_LENGTH: for a teacher's new deck, the form again with the reason beside the file.

    Refused before the body is read (by the CSRF check), so nothing was stored.
    """
    largest = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    if request.endpoint != "authoring.decks" or not (current_user.is_authenticated and current_user.is_teacher):
        return render_template("error.html", title="Too large",
                               message="That upload is larger than this server accepts."), 413
    return _decks_page(DocumentForm(formdata=None), [
        f"This upload is {request.content_length or 0:,} bytes; the server takes at most {largest:,} bytes a "
        f"request, and {_limits().document_max_bytes:,} bytes a document. Split the document into smaller parts, "
        "one deck each. Nothing was stored."]), 413


def _decks_page(form: DocumentForm, upload_errors: list[str]) -> str:
    return render_template("teach/decks.html", form=form, upload_errors=upload_errors, accepted=ACCEPTED,
                           documents=authoring.teachers_documents(session(), user_id()),
                           bundled=authoring.bundled_decks(session()), max_bytes=_limits().document_max_bytes)


@bp.route("/<int:document_id>")
@teacher_required
def document(document_id: int) -> str:
    """The document, every sentence addressable, with the facts written from it and what publishing does."""
    doc = _document(document_id)
    facts_by_sentence: dict[int | None, list[AuthoredFact]] = {}
    for fact in doc.facts:
        facts_by_sentence.setdefault(fact.sentence_id, []).append(fact)
    return render_template("teach/document.html", document=doc, facts_by_sentence=facts_by_sentence,
                           suggestions=authoring.suggested_facts(doc),
                           relations=authoring.relations_of(doc), action_form=EmptyForm(),
                           published_stays=authoring.PUBLISHED_STAYS,
                           classrooms=classes.teachers_classrooms(session(), user_id()))


def _fact_form(doc: Document, fact: AuthoredFact | None = None, *, formdata: Any = None) -> FactForm:
    relations = authoring.relations_of(doc)
    if formdata is not None:
        form = FactForm(formdata=formdata)
    elif fact is None:
        form = FactForm()
    else:
        form = FactForm(
        data={"relation": fact.relation, "subject": fact.subject, "object": fact.object,
              "explanation": fact.explanation, "supplemented": fact.supplemented,
              "sentence": str(fact.sentence_id or "")})
    form.relation.choices = [(name, fields["label"]) for name, fields in relations.items()]
    return form


def _sentence_id(form: FactForm) -> int | None:
    raw = (form.sentence.data or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise Invalid("This fact names no sentence of the document.", field="subject")
    return int(raw)


def _typed(form: FactForm) -> authoring.FactInput:
    return authoring.FactInput(relation=form.relation.data or "", subject=form.subject.data or "",
                               object=form.object.data or "", explanation=form.explanation.data or "",
                               supplemented=bool(form.supplemented.data), sentence_id=_sentence_id(form))


@bp.route("/<int:document_id>/facts/new", methods=["GET", "POST"])
@teacher_required
def new_fact(document_id: int) -> Page | BaseResponse:
    """Write a fact from a sentence (or a supplemented one): subject, relation, object, explanation."""
    doc = _document(document_id)
    form = _fact_form(doc)
    sentence = None
    if request.method == "GET":
        sentence = authoring.sentence_of(session(), doc, request.args.get("sentence", type=int))
        if sentence is not None:
            form.sentence.data = str(sentence.id)
        form.relation.data = request.args.get("relation") or "term-definition"
        # A suggested fact, opened to be edited before it is written.
        form.subject.data = request.args.get("subject", "")[:authoring.MAX_FACT_CHARS]
        form.object.data = request.args.get("object", "")[:authoring.MAX_FACT_CHARS]
    elif form.validate_on_submit():
        try:
            authoring.write_fact(session(), teacher_id=user_id(), document_id=doc.id, fact=_typed(form), now=now())
        except Invalid as error:
            _beside(form, error, default="subject")
        else:
            flash("Fact saved. Publish the deck when you are ready.", "success")
            return redirect(url_for("authoring.document", document_id=doc.id, _anchor=_anchor_of(form)), code=303)
    if sentence is None and request.method == "POST":
        try:
            sentence = authoring.sentence_of(session(), doc, _sentence_id(form))
        except Invalid:
            sentence = None
    return render_template("teach/fact.html", document=doc, form=form, sentence=sentence, fact=None,
                           relations=authoring.relations_of(doc)), 400 if form.errors else 200


def _anchor_of(form: FactForm) -> str:
    raw = form.sentence.data or ""
    return f"fact-of-{raw}" if raw.isdigit() else "facts"


@bp.route("/<int:document_id>/facts/<int:fact_id>", methods=["GET", "POST"])
@teacher_required
def edit_fact(document_id: int, fact_id: int) -> Page | BaseResponse:
    """Correct a fact's words; its cards keep their key and everyone's progress."""
    doc = _document(document_id)
    fact = authoring.own_fact(session(), doc, fact_id)
    if request.method == "GET":
        form = _fact_form(doc, fact)
    else:
        sent = request.form.copy()
        sent["relation"] = fact.relation  # a fact's relation is part of its key: it never changes
        form = _fact_form(doc, formdata=sent)
        if form.validate_on_submit():
            try:
                authoring.edit_fact(session(), teacher_id=user_id(), document_id=doc.id, fact_row_id=fact.id,
                                    fact=_typed(form), now=now())
            except Invalid as error:
                _beside(form, error, default="subject")
            else:
                flash("Fact corrected. Publish again to update its cards; progress is kept.", "success")
                return redirect(url_for("authoring.document", document_id=doc.id, _anchor=_anchor_of(form)),
                                code=303)
    return render_template("teach/fact.html", document=doc, form=form, sentence=fact.sentence, fact=fact,
                           relations=authoring.relations_of(doc)), 400 if form.errors else 200


@bp.route("/<int:document_id>/facts/<int:fact_id>/remove", methods=["POST"])
@teacher_required
def remove_fact(document_id: int, fact_id: int) -> BaseResponse:
    """Remove a fact; its cards are retired at the next publish and nobody's history is touched."""
    _document(document_id)
    if EmptyForm().validate_on_submit():
        authoring.remove_fact(session(), teacher_id=user_id(), document_id=document_id, fact_row_id=fact_id)
        flash("Fact removed. Publish again to retire its cards (students' history is kept).", "info")
    return redirect(url_for("authoring.document", document_id=document_id, _anchor="facts"), code=303)


@bp.app_template_global()
def deleting_the_document(document: Document) -> Question:
    facts = f", its {_count(len(document.facts), 'fact')}," if document.facts else ""
    return Question(f"Delete “{document.title}”?",
                    f"The document{facts} and the questions written for it are deleted. It was never published, "
                    "so no student has studied it.", "Delete the document")


@bp.route("/<int:document_id>/delete", methods=["GET", "POST"])
@teacher_required
def delete_document(document_id: int) -> BaseResponse | str:
    """Delete a document never published (after asking); a published one stays, and the page says why."""
    doc = _document(document_id)  # another teacher's: 404
    if request.method == "GET":
        return confirm_page(deleting_the_document(doc), cancel=url_for("authoring.document", document_id=document_id))
    if EmptyForm().validate_on_submit():
        title = authoring.delete_document(session(), teacher_id=user_id(), document_id=document_id)
        flash(f"Deleted “{title}”.", "success")
        return redirect(url_for("authoring.decks"), code=303)
    return redirect(url_for("authoring.document", document_id=document_id), code=303)


@bp.route("/<int:document_id>/relations/<name>", methods=["GET", "POST"])
@teacher_required
def relation(document_id: int, name: str) -> Page | BaseResponse:
    """Change the question templates of one of the deck's relations."""
    doc = _document(document_id)
    relations = authoring.relations_of(doc)
    if name not in relations:
        return render_template("error.html", title="Not found", message="This deck has no such relation."), 404
    current = relations[name]
    form = RelationForm(data=current) if request.method == "GET" else RelationForm()
    if form.validate_on_submit():
        questions = {field: getattr(form, field).data or "" for field in authoring.QUESTION_FIELDS}
        try:
            authoring.set_relation_questions(session(), teacher_id=user_id(), document_id=doc.id, relation=name,
                                             questions=questions)
        except Invalid as error:
            _beside(form, error, default="forward")
        else:
            flash(f"Questions of “{current['label']}” saved. The preview shows the cards they make.", "success")
            return redirect(url_for("authoring.preview", document_id=doc.id), code=303)
    return render_template("teach/relation.html", document=doc, form=form, name=name, relation=current,
                           is_cloze="cloze" in current), 400 if form.errors else 200


@bp.route("/<int:document_id>/preview")
@teacher_required
def preview(document_id: int) -> str:
    """Every card the deck's facts make, as a student will see it."""
    doc = _document(document_id)
    problem, plans = None, []
    try:
        plans = authoring.preview_cards(doc)
    except Invalid as error:
        problem = error.message
    return render_template("teach/preview.html", document=doc, plans=plans, problem=problem,
                           relations=authoring.relations_of(doc), action_form=EmptyForm())


@bp.route("/<int:document_id>/publish", methods=["POST"])
@teacher_required
def publish(document_id: int) -> BaseResponse:
    """Build the facts into the deck (the same build as a facts file), keeping every student's progress."""
    _document(document_id)
    if EmptyForm().validate_on_submit():
        try:
            revision, _report = authoring.publish(session(), teacher_id=user_id(), document_id=document_id, now=now())
        except Invalid as error:
            flash(f"Nothing was published: {error.message}", "error")
        else:
            if revision is None:
                flash("The deck already matches its facts: nothing to publish.", "info")
            else:
                flash(f"Published revision {revision.number}: {revision.cards_added} cards added, "
                      f"{revision.cards_updated} updated, {revision.cards_retired} retired. Students keep their "
                      "progress.", "success")
    return redirect(url_for("authoring.document", document_id=document_id), code=303)


@bp.route("/<int:document_id>/facts.yaml")
@teacher_required
def facts_file(document_id: int) -> Response | BaseResponse:
    """The deck's facts as a facts file in the decks/ format; `flashapp deck build` makes the same cards and keys."""
    doc = _document(document_id)
    try:
        text = deck_spec_to_yaml(authoring.document_spec(doc))
    except ValueError:
        flash("Write at least one fact before downloading the deck as a facts file.", "error")
        return redirect(url_for("authoring.document", document_id=doc.id), code=303)
    return Response(text, mimetype="application/yaml",
                    headers={"Content-Disposition": f'attachment; filename="{doc.slug}.yaml"'})


@bp.route("/<int:document_id>/suggestions/<key>/accept", methods=["POST"])
@teacher_required
def accept_suggestion(document_id: int, key: str) -> BaseResponse:
    """Write a suggested fact as it stands."""
    _document(document_id)
    if EmptyForm().validate_on_submit():
        try:
            fact = authoring.accept_suggestion(session(), teacher_id=user_id(), document_id=document_id, key=key,
                                               now=now())
        except Invalid as error:
            flash(f"Not written: {error.message}", "error")
        else:
            flash(f"Fact written: {fact.subject} → {fact.object}.", "success")
    return redirect(url_for("authoring.document", document_id=document_id, _anchor="suggestions"), code=303)


@bp.route("/<int:document_id>/suggestions/<key>/drop", methods=["POST"])
@teacher_required
def drop_suggestion(document_id: int, key: str) -> BaseResponse:
    """Stop suggesting a candidate fact."""
    _document(document_id)
    if EmptyForm().validate_on_submit():
        authoring.drop_suggestion(session(), teacher_id=user_id(), document_id=document_id, key=key)
        flash("Suggestion dropped.", "info")
    return redirect(url_for("authoring.document", document_id=document_id, _anchor="suggestions"), code=303)


def _read_import(kind: str, data: bytes, filename: str) -> Table:
    limit = _limits().document_max_bytes
    if kind == "anki":
        return read_anki_notes_text(data, filename=filename, max_bytes=limit)
    return read_table(data, filename=filename, max_bytes=limit)


def _mapping(form: ImportForm) -> ColumnMapping:
    def column(value: str | None) -> str | None:
        return value or None

    relation_column = column(form.relation_column.data)
    return ColumnMapping(subject=form.subject.data or "", object=form.object.data or "", relation=relation_column,
                         fixed_relation=None if relation_column else (form.relation.data or None),
                         explanation=column(form.explanation.data), supplemented=column(form.supplemented.data))


def _offer_columns(form: ImportForm, table: Table, relations: dict[str, dict[str, str]]) -> None:
    columns = [(name, name) for name in table.columns]
    form.subject.choices = form.object.choices = columns
    form.relation_column.choices = form.explanation.choices = form.supplemented.choices = [("", "none"), *columns]
    form.relation.choices = [(name, fields["label"]) for name, fields in relations.items()]


@bp.route("/<int:document_id>/import", methods=["GET", "POST"])
@teacher_required
def import_facts(document_id: int) -> Page | BaseResponse:
    """Facts from a CSV or TSV table or Anki's plain-text notes: map the columns, preview, then import them all."""
    doc = _document(document_id)
    relations = authoring.relations_of(doc)
    form = ImportForm()
    file_errors: list[str] = []
    mapping_errors: list[str] = []
    table: Table | None = None
    preview: list[PreviewRow] = []
    if form.validate_on_submit():
        upload = request.files.get("file")
        try:
            if upload is not None and upload.filename:
                try:
                    data = upload.read(_limits().document_max_bytes + 1)
                finally:
                    upload.close()
                table = _read_import(form.format.data or "table", data, upload.filename)
                form.table.data = base64.b64encode(data).decode("ascii")
                form.filename.data = upload.filename[:200]
                _offer_columns(form, table, relations)
                guess = guess_mapping(table, fixed_relation=next(iter(relations)))
                form.subject.data, form.object.data = guess.subject, guess.object
                form.relation_column.data = guess.relation or ""
                form.relation.data = guess.fixed_relation or next(iter(relations))
                form.explanation.data, form.supplemented.data = guess.explanation or "", guess.supplemented or ""
            elif form.table.data:
                data = base64.b64decode(form.table.data, validate=True)
                table = _read_import(form.format.data or "table", data, form.filename.data or "table")
                _offer_columns(form, table, relations)
            else:
                file_errors.append("Choose a file to import.")
        except (binascii.Error, ValueError) as error:
            message = error.message if isinstance(error, FactsImportError) else "This table could not be read back; " \
                "choose the file again."
            file_errors.append(f"Line {error.line}: {message}" if isinstance(error, FactsImportError) and error.line
                               else message)
            table = None
        if table is not None:
            mapping = _mapping(form)
            try:
                check_mapping(table, mapping)
                preview = preview_import(table, mapping)
                if request.form.get("action") == "import":
                    result = facts_from_table(table, mapping)
                    if result.problems:
                        raise FactsImportError("Nothing was imported: " + "; ".join(map(str, result.problems[:10]))
                                               + ". Fix these rows in the file, or change the mapping.")
                    written = authoring.import_facts(session(), teacher_id=user_id(), document_id=doc.id,
                                                     drafts=result.facts, now=now())
                    flash(f"Imported {len(written)} facts. Publish the deck to make their cards.", "success")
                    return redirect(url_for("authoring.document", document_id=doc.id, _anchor="facts"), code=303)
            except FactsImportError as error:
                mapping_errors.append(error.message)
            except Invalid as error:
                mapping_errors.append(error.message)
    failed = bool(form.errors or file_errors or mapping_errors)
    return render_template("teach/import.html", document=doc, form=form, table=table, preview=preview,
                           file_errors=file_errors, mapping_errors=mapping_errors,
                           relations=relations), 400 if failed else 200
