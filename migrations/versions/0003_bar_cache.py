"""bar cache: historical OHLCV bars fetched from market-data sources, so a re-run replays the same data

``bars``: one row per (symbol, interval, ts); prices are BIGINT millionths (*_e6, rounded to six decimals),
volume is whole units, times are UTC. ``bar_ranges``: the time ranges the cache holds completely, which is
what lets it tell a market holiday from a range never fetched (see ledger.bars).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 15:40:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bars',
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('interval', sa.String(length=8), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('open_e6', sa.BigInteger(), nullable=False),
    sa.Column('high_e6', sa.BigInteger(), nullable=False),
    sa.Column('low_e6', sa.BigInteger(), nullable=False),
    sa.Column('close_e6', sa.BigInteger(), nullable=False),
    sa.Column('volume', sa.BigInteger(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('symbol', 'interval', 'ts', name=op.f('pk_bars'))
    )
    op.create_table('bar_ranges',
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('interval', sa.String(length=8), nullable=False),
    sa.Column('range_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('range_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('range_end > range_start', name=op.f('ck_bar_ranges_range_not_empty')),
    sa.PrimaryKeyConstraint('symbol', 'interval', 'range_start', name=op.f('pk_bar_ranges'))
    )


def downgrade() -> None:
    op.drop_table('bar_ranges')
    op.drop_table('bars')
