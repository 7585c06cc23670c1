"""catalog: private is part of the asset property key (a public and a private property may share a name)

Revision ID: f002
Revises: f001
Create Date: 2026-11-23 13:05:00.000000
"""
from alembic import op


revision = 'f002'
down_revision = 'f001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('catalog_asset_properties', schema=None) as batch_op:
        batch_op.drop_constraint('pk_catalog_asset_properties', type_='primary')
        batch_op.create_primary_key('pk_catalog_asset_properties', ['asset_id', 'name', 'position', 'private'])


def downgrade() -> None:
    op.execute("DELETE FROM catalog_asset_properties WHERE private")
    with op.batch_alter_table('catalog_asset_properties', schema=None) as batch_op:
        batch_op.drop_constraint('pk_catalog_asset_properties', type_='primary')
        batch_op.create_primary_key('pk_catalog_asset_properties', ['asset_id', 'name', 'position'])
