"""catalog: assets, asset properties, policy definitions, contract definitions

Revision ID: f001
Revises: 0001
Create Date: 2026-11-23 12:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = 'f001'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_assets',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('private_properties', sa.JSON(), nullable=False),
    sa.Column('data_address', sa.JSON(), nullable=False),
    sa.Column('data_class', sa.String(length=32), nullable=True),
    sa.Column('jurisdiction', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_assets'))
    )
    with op.batch_alter_table('catalog_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_assets_data_class'), ['data_class'], unique=False)

    op.create_table('catalog_asset_properties',
    sa.Column('asset_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['catalog_assets.id'],
                            name=op.f('fk_catalog_asset_properties_asset_id_catalog_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('asset_id', 'name', 'position', name=op.f('pk_catalog_asset_properties'))
    )

    op.create_table('catalog_policy_definitions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('policy_uid', sa.String(length=500), nullable=False),
    sa.Column('policy_hash', sa.String(length=64), nullable=False),
    sa.Column('private_properties', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_policy_definitions'))
    )

    op.create_table('catalog_contract_definitions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('access_policy_id', sa.String(length=255), nullable=False),
    sa.Column('contract_policy_id', sa.String(length=255), nullable=False),
    sa.Column('assets_selector', sa.JSON(), nullable=False),
    sa.Column('approval', sa.String(length=16), nullable=False),
    sa.Column('private_properties', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_contract_definitions'))
    )
    with op.batch_alter_table('catalog_contract_definitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_contract_definitions_access_policy_id'), ['access_policy_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_contract_definitions_contract_policy_id'),
                              ['contract_policy_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('catalog_contract_definitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_contract_definitions_contract_policy_id'))
        batch_op.drop_index(batch_op.f('ix_catalog_contract_definitions_access_policy_id'))
    op.drop_table('catalog_contract_definitions')
    op.drop_table('catalog_policy_definitions')
    op.drop_table('catalog_asset_properties')
    with op.batch_alter_table('catalog_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_assets_data_class'))
    op.drop_table('catalog_assets')
