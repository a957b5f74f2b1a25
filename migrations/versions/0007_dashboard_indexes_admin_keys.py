"""dashboard: indexes for its pages on a big ledger, and admin API keys

- ``orders``: index ``(account_id, epoch, id)``: the orders page lists an account's epoch newest first with a
  LIMIT, which this index answers without sorting (PostgreSQL; SQLite's (account_id, epoch, status) index
  would otherwise be walked and sorted).
- ``cash_movements``: index ``(account_id, epoch, kind)``: an epoch's deposits and withdrawals (the capital a
  return is measured against, the flows of the equity curve) without reading every fill's movement.
- ``api_keys``: ``is_admin`` (false for existing keys) and ``account_id`` nullable. An admin key belongs to no
  account (``account_id`` NULL exactly when ``is_admin``, a CHECK); it signs in to the dashboard, which then
  shows every account, and is refused by the HTTP API.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN_CHECK = '(account_id IS NULL) = is_admin'


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_account_id_epoch_id', ['account_id', 'epoch', 'id'], unique=False)
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.create_index('ix_cash_movements_account_id_epoch_kind', ['account_id', 'epoch', 'kind'],
                              unique=False)
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_admin', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(op.f('ck_api_keys_admin_has_no_account'), ADMIN_CHECK)


def downgrade() -> None:
    """Back to 0006, where every key has an account: refused while an admin key exists (revoked or not)."""
    admins = op.get_bind().execute(sa.text('SELECT COUNT(*) FROM api_keys WHERE is_admin')).scalar_one()
    if admins:
        raise RuntimeError(f'{admins} admin API key(s) exist: revision 0006 cannot hold a key without an account; '
                           'delete them (DELETE FROM api_keys WHERE is_admin) before downgrading')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_api_keys_admin_has_no_account'), type_='check')
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('is_admin')
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_index('ix_cash_movements_account_id_epoch_kind')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_account_id_epoch_id')
