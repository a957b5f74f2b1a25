"""Alembic environment for paper-ledger: wired to the ledger's models, batch mode for SQLite.

Used two ways: from code (``ledger.db.migrate`` passes an open connection in ``config.attributes``) and
from the ``alembic`` command line in the repository root (URL from ``-x db_url=...``, ``sqlalchemy.url``,
``LEDGER_DATABASE_URL`` or the config file, in that order).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from ledger.db.engine import get_engine, resolve_db_url
from ledger.db.migrate import check_foreign_keys, foreign_keys_suspended
from ledger.db.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("db_url") or resolve_db_url(
        config.get_main_option("sqlalchemy.url") or None
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine(_url()).connect() as connection, foreign_keys_suspended(connection):
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
            check_foreign_keys(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
