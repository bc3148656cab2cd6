"""documents a teacher writes decks from, their facts and revisions; deck owners; note sentences

Revision ID: documents_into_decks
Revises: review_origin
Create Date: 2026-11-26 01:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'documents_into_decks'
down_revision = 'review_origin'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'document',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=80), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('citation', sa.Text(), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=False),
        sa.Column('relations', sa.Text(), nullable=False),
        sa.Column('dropped_suggestions', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deck_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['deck_id'], ['deck.id'], name=op.f('fk_document_deck_id_deck')),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_document_owner_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_document')),
        sa.UniqueConstraint('deck_id', name=op.f('uq_document_deck_id')),
        sa.UniqueConstraint('slug', name=op.f('uq_document_slug')),
    )
    op.create_index(op.f('ix_document_owner_id'), 'document', ['owner_id'], unique=False)
    op.create_table(
        'document_section',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['document.id'], name=op.f('fk_document_section_document_id_document'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_document_section')),
        sa.UniqueConstraint('document_id', 'name', name=op.f('uq_document_section_document_id')),
    )
    op.create_table(
        'document_sentence',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('section_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('paragraph', sa.Integer(), nullable=False),
        sa.Column('anchor', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['document.id'],
                                name=op.f('fk_document_sentence_document_id_document'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['section_id'], ['document_section.id'],
                                name=op.f('fk_document_sentence_section_id_document_section'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_document_sentence')),
        sa.UniqueConstraint('document_id', 'anchor', name=op.f('uq_document_sentence_document_id')),
    )
    op.create_index(op.f('ix_document_sentence_section_id'), 'document_sentence', ['section_id'], unique=False)
    op.create_table(
        'authored_fact',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('sentence_id', sa.Integer(), nullable=True),
        sa.Column('relation', sa.String(length=80), nullable=False),
        sa.Column('fact_id', sa.String(length=80), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('object', sa.Text(), nullable=False),
        sa.Column('explanation', sa.Text(), nullable=False),
        sa.Column('supplemented', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['document.id'], name=op.f('fk_authored_fact_document_id_document'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['sentence_id'], ['document_sentence.id'],
                                name=op.f('fk_authored_fact_sentence_id_document_sentence')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_authored_fact')),
        sa.UniqueConstraint('document_id', 'relation', 'fact_id', name=op.f('uq_authored_fact_document_id')),
    )
    op.create_index(op.f('ix_authored_fact_document_id'), 'authored_fact', ['document_id'], unique=False)
    op.create_index(op.f('ix_authored_fact_sentence_id'), 'authored_fact', ['sentence_id'], unique=False)
    op.create_table(
        'deck_revision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('facts', sa.Integer(), nullable=False),
        sa.Column('cards_added', sa.Integer(), nullable=False),
        sa.Column('cards_updated', sa.Integer(), nullable=False),
        sa.Column('cards_retired', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['document.id'], name=op.f('fk_deck_revision_document_id_document'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deck_revision')),
        sa.UniqueConstraint('document_id', 'number', name=op.f('uq_deck_revision_document_id')),
    )
    with op.batch_alter_table('deck', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_deck_owner_id'), ['owner_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_deck_owner_id_user'), 'user', ['owner_id'], ['id'])
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sentence_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_note_sentence_id'), ['sentence_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_note_sentence_id_document_sentence'), 'document_sentence',
                                    ['sentence_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_note_sentence_id_document_sentence'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_note_sentence_id'))
        batch_op.drop_column('sentence_id')
    with op.batch_alter_table('deck', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_deck_owner_id_user'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_deck_owner_id'))
        batch_op.drop_column('owner_id')
    op.drop_table('deck_revision')
    op.drop_index(op.f('ix_authored_fact_sentence_id'), table_name='authored_fact')
    op.drop_index(op.f('ix_authored_fact_document_id'), table_name='authored_fact')
    op.drop_table('authored_fact')
    op.drop_index(op.f('ix_document_sentence_section_id'), table_name='document_sentence')
    op.drop_table('document_sentence')
    op.drop_table('document_section')
    op.drop_index(op.f('ix_document_owner_id'), table_name='document')
    op.drop_table('document')
