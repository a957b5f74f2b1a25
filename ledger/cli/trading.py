"""``paper-ledger`` commands on accounts, orders and quotes: each call is one PaperBroker use case.

Commands that change an account need it to exist; only ``account create`` (and ``replay``) create accounts.
Quotes belong to an account in this ledger (valuation and resting orders use that account's last quote), so
``quote set`` and ``quote fetch`` take ``--account`` (default: ``default``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ledger.book.accounts import validate_account_name
from ledger.book.store import find_account
from ledger.brokers.paper import PaperBroker
from ledger.cli.common import (
    CASH,
    DECIMAL,
    db_option,
    existing_broker,
    fail,
    fmt_money,
    fmt_number,
    fmt_percent,
    ledger_url,
    print_fields,
    print_rows,
    print_table,
    reading,
    require_account,
    row_format_options,
)
from ledger.constants import (
    DEFAULT_ACCOUNT,
    FILL_MODELS,
    OPEN_STATUSES,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_STATUSES,
    ORDER_STOP,
    ORDER_STOP_LIMIT,
    ORDER_TRAILING_STOP,
    SIDES,
    TIF_GTC,
    TIMES_IN_FORCE,
)
from ledger.exceptions import LedgerError
from ledger.money import round_amount
from ledger.queries import (
    account_margin,
    accounts_stmt,
    activity_stmt,
    capital,
    orders_with_fill_price_stmt,
    portfolio_value,
    position_rows,
    quotes_stmt,
    total_return,
)

EXIT_NOT_CANCELED = 3

ACCOUNT_OPTION = click.option(
    "--account", "-a", default=DEFAULT_ACCOUNT, show_default=True, help="The account whose quote this is."
)


@click.command("accounts")
@row_format_options
@db_option
def accounts_command(fmt: str, out: Path | None, db: str | None) -> None:
    """List the accounts: epoch, cash, equity (positions at the mid of their last quote), open positions."""
    with reading(db) as conn:
        rows = [
            (account.name, account.epoch, account.initial_cash_e6, account.cash_e6,
             round_amount(portfolio_value(conn, account.id)), len(position_rows(conn, account.id)), account.created_at)
            for account in conn.execute(accounts_stmt())
        ]
    if not rows and fmt == "table":
        click.echo("no accounts yet: create one with `paper-ledger account create NAME --cash N`")
        return
    print_rows(fmt, out, (("account", "text"), ("epoch", "number"), ("initial_cash", "money"), ("cash", "money"),
                          ("equity", "money"), ("positions", "number"), ("created", "time")), rows)


@click.group()
def account() -> None:
    """Create, inspect and reset paper accounts."""


@account.command("create")
@click.argument("name")
@click.option("--cash", type=CASH, required=True, help="Initial cash deposit, e.g. 100000.")
@db_option
def account_create(name: str, cash: Decimal, db: str | None) -> None:
    """Create the paper account NAME with an initial cash deposit (an existing NAME is an error)."""
    name = validate_account_name(name)
    with reading(db, must_exist=False) as conn:
        if find_account(conn, name) is not None:
            raise LedgerError(f"account {name!r} already exists (see `paper-ledger account show {name}`)")
    with PaperBroker(account=name, db_url=ledger_url(db, must_exist=False), initial_cash=cash) as broker:
        click.echo(f"created account {broker.account!r} with cash {fmt_money(broker.get_account()['cash'])}")


@account.command("show")
@click.argument("name")
@db_option
def account_show(name: str, db: str | None) -> None:
    """Cash, equity and each position: quantity, average cost, last price, market value, P&L."""
    from ledger.reports import positions_frame  # pandas: imported only by the commands that need it

    with reading(db) as conn:
        state = require_account(conn, name)
        equity = portfolio_value(conn, state.id)
        margin = account_margin(conn, state.id)
        invested = capital(conn, state.id)
        frame = positions_frame(conn, name)
    print_fields(
        f"account {state.name} (epoch {state.epoch})",
        [
            ("initial cash", fmt_money(state.initial_cash)),
            ("cash", fmt_money(state.cash)),
            ("reserved cash", fmt_money(state.reserved_cash)),
            ("available cash", fmt_money(state.available_cash)),
            ("equity", fmt_money(equity)),
            ("return", "n/a" if (gain := total_return(equity, invested)) is None else fmt_percent(gain)),
            *(
                [
                    ("margin multiplier", fmt_number(margin.multiplier)),
                    ("shorting", "enabled" if state.shorting_enabled else "disabled"),
                    ("long market value", fmt_money(margin.long_value)),
                    ("short market value", fmt_money(margin.short_value)),
                    ("buying power", fmt_money(margin.buying_power)),
                    ("initial margin", fmt_money(margin.initial_margin)),
                    ("maintenance margin", fmt_money(margin.maintenance_margin)),
                    ("maintenance shortfall", fmt_money(margin.maintenance_shortfall)),
                ]
                if margin.multiplier > 1
                else []
            ),
        ],
    )
    if frame.empty:
        click.echo("no positions")
        return
    columns = ("symbol", "qty", "reserved", "avg cost", "last price", "market value", "unrealized P&L", "realized P&L")
    rows = [
        (
            row.symbol,
            fmt_number(row.qty),
            fmt_number(row.reserved_qty),
            fmt_money(row.avg_cost),
            fmt_money(row.last_price),
            fmt_money(row.market_value),
            fmt_money(row.unrealized_pnl),
            fmt_money(row.realized_pnl),
        )
        for row in frame.itertuples(index=False)
    ]
    print_table("positions (negative qty: short; reserved: held by resting sells; last price: mid of the last quote)",
                columns, rows,
                numeric=set(columns[1:]))


@account.command("deposit")
@click.argument("name")
@click.argument("amount", type=CASH)
@db_option
def account_deposit(name: str, amount: Decimal, db: str | None) -> None:
    """Add AMOUNT of cash to account NAME (a `deposit` cash movement; returns count it as capital)."""
    with existing_broker(db, name) as broker:
        state = broker.deposit(amount)
    click.echo(f"deposited {fmt_money(amount)} into {name!r}: cash {fmt_money(state['cash'])}")


@account.command("withdraw")
@click.argument("name")
@click.argument("amount", type=CASH)
@db_option
def account_withdraw(name: str, amount: Decimal, db: str | None) -> None:
    """Take AMOUNT of cash out of account NAME (at most its available cash)."""
    with existing_broker(db, name) as broker:
        state = broker.withdraw(amount)
    click.echo(f"withdrew {fmt_money(amount)} from {name!r}: cash {fmt_money(state['cash'])}")


@account.command("config")
@click.argument("name")
@click.option("--fill-model", type=click.Choice(FILL_MODELS), default=None, help="full or displayed_size.")
@click.option("--calendar", default=None, help="Exchange calendar for day orders (XNYS, 24/7, ...).")
@click.option("--equity-mark-interval", "equity_mark_interval_s", type=click.IntRange(min=0), default=None,
              help="Seconds of broker time between two equity marks written by quote updates.")
@click.option("--margin-multiplier", "max_margin_multiplier", type=click.FloatRange(1, 4), default=None,
              help="1: a cash account; 2: Reg T margin (up to 4).")
@click.option("--shorting/--no-shorting", "shorting_enabled", default=None,
              help="Allow short selling (margin accounts only).")
@db_option
def account_config(
    name: str, fill_model: str | None, calendar: str | None, equity_mark_interval_s: int | None,
    max_margin_multiplier: float | None, shorting_enabled: bool | None, db: str | None,
) -> None:
    """Show account NAME's settings, changing those given first."""
    changes = {"fill_model": fill_model, "calendar": calendar, "equity_mark_interval_s": equity_mark_interval_s,
               "max_margin_multiplier": None if max_margin_multiplier is None else Decimal(str(max_margin_multiplier)),
               "shorting_enabled": shorting_enabled}
    with existing_broker(db, name) as broker:
        changing = any(value is not None for value in changes.values())
        settings = broker.configure(**changes) if changing else broker.settings()
    print_fields(f"account {name} settings", [(key, str(value)) for key, value in settings.items()])


@account.command("reset")
@click.argument("name")
@click.option("--cash", type=CASH, default=None, help="New initial cash (default: the account's current one).")
@db_option
def account_reset(name: str, cash: Decimal | None, db: str | None) -> None:
    """Start NAME afresh (a new epoch): resting orders canceled, cash restored; history stays queryable."""
    with existing_broker(db, name) as broker:
        broker.reset(initial_cash=cash)
        state = broker.get_account()
    click.echo(f"account {name!r} reset: epoch {state['epoch']}, cash {fmt_money(state['cash'])}")


def cost_options(command: Any) -> Any:
    """``--slippage-bps`` and ``--fee-bps``: the costs of the run this command opens (default: the config's)."""
    command = click.option("--fee-bps", type=DECIMAL, default=None,
                           help="Fee in bps of the notional for this command's orders (default: config fee_bps).")(command)
    return click.option("--slippage-bps", type=DECIMAL, default=None,
                        help="Market-order slippage in bps for this command's orders (default: config "
                        "slippage_bps).")(command)


# ignore_unknown_options: a negative QTY such as -5 reaches the broker (which records the rejection) instead
# of being parsed as an unknown option.
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("side", type=click.Choice(SIDES, case_sensitive=False))
@click.argument("symbol")
@click.argument("qty", type=DECIMAL, required=False)
@click.option("--limit", "limit_price", type=DECIMAL, default=None, help="Limit price (limit or stop_limit).")
@click.option("--stop", "stop_price", type=DECIMAL, default=None, help="Stop price (stop, or stop_limit with --limit).")
@click.option("--trail-price", type=DECIMAL, default=None, help="Trailing stop: trail by this amount.")
@click.option("--trail-percent", type=DECIMAL, default=None, help="Trailing stop: trail by this percent.")
@click.option("--notional", type=DECIMAL, default=None, help="Market order for this cash amount instead of QTY.")
@click.option("--tif", "time_in_force", type=click.Choice(TIMES_IN_FORCE), default=TIF_GTC, show_default=True,
              help="Time in force: gtc, day (expires at its session's close), ioc, fok.")
@click.option("--client-order-id", default=None, help="Your id for the order; resubmitting it returns the original.")
@cost_options
@db_option
def order(
    name: str, side: str, symbol: str, qty: Decimal | None, limit_price: Decimal | None, stop_price: Decimal | None,
    trail_price: Decimal | None, trail_percent: Decimal | None, notional: Decimal | None, time_in_force: str,
    client_order_id: str | None, slippage_bps: Decimal | None, fee_bps: Decimal | None, db: str | None,
) -> None:
    """Submit an order on account NAME: SIDE (buy/sell) QTY of SYMBOL, at market or --limit PX.

    The type follows the prices given: --limit: limit; --stop: stop; both: stop_limit; --trail-price or
    --trail-percent: trailing_stop; none: market (or --notional AMOUNT instead of QTY). A market order fills at
    once against the account's last quote for SYMBOL (`quote set` / `quote fetch`); a limit order fills at once
    when marketable, else rests until a quote crosses it; a stop waits for a quote to reach it. A resting order
    keeps the slippage and fee it was submitted with. A rejection (a negative QTY, say: `order alice buy AAPL
    -5` needs no `--`) is recorded in the ledger and reported as an error.
    """
    if (qty is None) == (notional is None):
        raise click.UsageError("give QTY or --notional AMOUNT (one of them)")
    if trail_price is not None or trail_percent is not None:
        order_type = ORDER_TRAILING_STOP
    elif stop_price is not None:
        order_type = ORDER_STOP_LIMIT if limit_price is not None else ORDER_STOP
    else:
        order_type = ORDER_LIMIT if limit_price is not None else ORDER_MARKET
    with existing_broker(db, name, slippage_bps, fee_bps) as broker:
        result = broker.submit_order(
            symbol, side.upper(), qty, order_type, limit_price, client_order_id, time_in_force=time_in_force,
            stop_price=stop_price, trail_price=trail_price, trail_percent=trail_percent, notional=notional,
        )
    click.echo(_describe_order(result))


@click.command()
@click.argument("name")
@click.argument("order_id")
@click.option("--qty", type=DECIMAL, default=None, help="New quantity (default: the unfilled quantity).")
@click.option("--limit", "limit_price", type=DECIMAL, default=None, help="New limit price.")
@click.option("--stop", "stop_price", type=DECIMAL, default=None, help="New stop price.")
@click.option("--trail", type=DECIMAL, default=None, help="New trail (price or percent, as the order has).")
@click.option("--tif", "time_in_force", type=click.Choice(TIMES_IN_FORCE), default=None, help="New time in force.")
@click.option("--client-order-id", default=None, help="The new order's own id.")
@db_option
def replace(
    name: str, order_id: str, qty: Decimal | None, limit_price: Decimal | None, stop_price: Decimal | None,
    trail: Decimal | None, time_in_force: str | None, client_order_id: str | None, db: str | None,
) -> None:
    """Replace the open order ORDER_ID of account NAME atomically (the old one becomes `replaced`)."""
    with existing_broker(db, name) as broker:
        result = broker.replace_order(order_id, qty=qty, limit_price=limit_price, stop_price=stop_price, trail=trail,
                                      time_in_force=time_in_force, client_order_id=client_order_id)
    click.echo(f"replaced {order_id} by: " + _describe_order(result))


@click.command()
@click.argument("name")
@click.argument("symbol", required=False)
@click.option("--all", "close_all", is_flag=True, help="Close every position.")
@click.option("--qty", type=DECIMAL, default=None, help="Close this many (default: all of the position).")
@click.option("--percentage", type=DECIMAL, default=None, help="Close this percent of the position.")
@click.option("--cancel-orders", is_flag=True, help="With --all: cancel every open order first.")
@db_option
def close(
    name: str, symbol: str | None, close_all: bool, qty: Decimal | None, percentage: Decimal | None,
    cancel_orders: bool, db: str | None,
) -> None:
    """Close account NAME's position in SYMBOL (or --all) with market orders."""
    if close_all == (symbol is not None):
        raise click.UsageError("give SYMBOL or --all (one of them)")
    with existing_broker(db, name) as broker:
        results = (broker.close_all_positions(cancel_orders=cancel_orders) if close_all
                   else [broker.close_position(symbol, qty=qty, percentage=percentage)])
    for result in results:
        click.echo(_describe_order(result))
    if not results:
        click.echo("no positions to close")


@click.command()
@click.argument("name")
@db_option
def expire(name: str, db: str | None) -> None:
    """Expire account NAME's open orders whose time is up (day orders past their session's close), now."""
    with existing_broker(db, name) as broker:
        expired = broker.expire_orders()
    for order in expired:
        click.echo(f"expired: order_id={order['order_id']}")
    click.echo(f"{len(expired)} order(s) expired")


def _describe_order(result: dict[str, Any]) -> str:
    what = f"{result['side']} {fmt_number(result['qty'])} {result['symbol']}"
    if result["status"] in ("filled", "partially_filled") and result["fill_price"] is not None:
        line = (
            f"{result['status'].replace('_', ' ')}: {what} @ {fmt_money(result['fill_price'])} "
            f"(notional {fmt_money(result['notional'])}, fee {fmt_money(result['fee'])})"
        )
    else:
        limit = f" limit {fmt_money(result['limit_price'])}" if result["limit_price"] is not None else ""
        line = f"{result['status']}: {what}{limit}"
    line += f" order_id={result['order_id']}"
    if result["replayed"]:
        line += f" (client_order_id {result['client_order_id']} already named this order: nothing new was placed)"
    return line


@click.command()
@click.argument("name")
@click.option("--status", type=click.Choice(ORDER_STATUSES), default=None, help="Only orders with this status.")
@row_format_options
@db_option
def orders(name: str, status: str | None, fmt: str, out: Path | None, db: str | None) -> None:
    """List the orders of account NAME (current epoch), oldest first.

    fill_price is the average price of the order's fills (empty while unfilled).
    """
    with reading(db) as conn:
        state = require_account(conn, name)
        found = conn.execute(orders_with_fill_price_stmt(state.id, status=status)).all()
    if not found and fmt == "table":
        click.echo("no orders" + (f" with status {status}" if status else ""))
        return
    columns = (("order_id", "text"), ("submitted", "time"), ("side", "text"), ("qty", "number"), ("symbol", "text"),
               ("type", "text"), ("limit", "money"), ("status", "text"), ("filled", "number"),
               ("fill_price", "money"), ("client_order_id", "text"), ("reason", "text"))
    rows = [
        (row.order_id, row.submitted_at, row.side, row.qty_e6, row.symbol, row.order_type, row.limit_price_e6,
         row.status, row.filled_qty_e6, _average_price(row.filled_notional_e6, row.fills_qty_e6),
         row.client_order_id, row.reject_reason)
        for row in found
    ]
    print_rows(fmt, out, columns, rows)


def _average_price(notional: Decimal | None, qty: Decimal | None) -> Decimal | None:
    return round_amount(notional / qty) if notional is not None and qty else None


@click.command()
@click.argument("name")
@click.argument("order_id")
@db_option
def cancel(name: str, order_id: str, db: str | None) -> None:
    """Cancel the resting order ORDER_ID of account NAME, releasing the cash or shares it reserved.

    Exit status: 0 canceled; 3 nothing canceled because the order is no longer resting (already filled,
    canceled or rejected: the line says which); 1 another error (no such order or account).
    """
    with existing_broker(db, name) as broker:
        before = broker.get_order(order_id)["status"]
        result = broker.cancel_order(order_id) if before in OPEN_STATUSES else {"order_id": order_id, "status": before}
    if before not in OPEN_STATUSES or result["status"] != "canceled":
        fail(f"order {order_id} is {result['status']}, not resting: nothing canceled", EXIT_NOT_CANCELED)
    click.echo(f"canceled: order_id={result['order_id']}")


@click.group()
def quote() -> None:
    """Store quotes (per account) by hand or from the market-data provider."""


@quote.command("set")
@click.argument("symbol")
@click.option("--bid", type=DECIMAL, required=True, help="Bid price.")
@click.option("--ask", type=DECIMAL, required=True, help="Ask price (>= bid).")
@ACCOUNT_OPTION
@db_option
def quote_set(symbol: str, bid: Decimal, ask: Decimal, account: str, db: str | None) -> None:
    """Store SYMBOL's quote for an account, now; resting limit orders it crosses fill at once."""
    with existing_broker(db, account) as broker:
        fills = broker.set_quote(symbol, bid, ask)
        stored = broker.get_quote(symbol)
    click.echo(f"{stored['symbol']} bid {fmt_money(stored['bid'])} ask {fmt_money(stored['ask'])} (account {account!r})")
    for fill in fills:
        click.echo(f"  filled resting {fill['side']} {fmt_number(fill['qty'])} @ {fmt_money(fill['fill_price'])} "
                   f"order_id={fill['order_id']}")


@quote.command("fetch")
@click.argument("symbols", nargs=-1, required=True)
@ACCOUNT_OPTION
@db_option
def quote_fetch(symbols: tuple[str, ...], account: str, db: str | None) -> None:
    """Fetch SYMBOLS' quotes from Yahoo Finance (one batched request) and store them for an account.

    Symbols Yahoo cannot price are reported and skipped; none priced is an error.
    """
    from ledger.brokers.data_provider import get_data_provider  # pandas: imported only when needed

    with existing_broker(db, account) as broker:
        fetched = get_data_provider("yfinance").get_multiple_quotes(list(symbols))
        for symbol, data in fetched.items():
            broker.set_quote(symbol, data["bid"], data["ask"], data["bid_size"], data["ask_size"])
    print_table(
        f"quotes stored for account {account!r}",
        ("symbol", "bid", "ask", "spread bps"),
        [(symbol, fmt_money(data["bid"]), fmt_money(data["ask"]), f"{data['spread_bps']:.1f}")
         for symbol, data in fetched.items()],
        numeric={"bid", "ask", "spread bps"},
    )
    missing = [symbol.upper() for symbol in symbols if symbol.strip().upper() not in fetched]
    if missing:
        click.echo(f"not priced: {', '.join(missing)}", err=True)


@quote.command("list")
@click.option("--account", "-a", default=DEFAULT_ACCOUNT, show_default=True, help="The account whose quotes to list.")
@row_format_options
@db_option
def quote_list(account: str, fmt: str, out: Path | None, db: str | None) -> None:
    """List the quotes stored for an account: the last one per symbol, its mid, spread and time."""
    with reading(db) as conn:
        state = require_account(conn, account)
        stored = conn.execute(quotes_stmt(state.id)).all()
    if not stored and fmt == "table":
        click.echo(f"no quotes stored for account {state.name!r} (see `paper-ledger quote set --help`)")
        return
    rows = []
    for row in stored:
        mid = (row.bid_e6 + row.ask_e6) / 2
        spread_bps = ((row.ask_e6 - row.bid_e6) / mid * 10_000).quantize(Decimal("0.01"))
        rows.append((row.symbol, row.bid_e6, row.ask_e6, mid, spread_bps, row.bid_size_e6, row.ask_size_e6,
                     row.quoted_at))
    print_rows(fmt, out, (("symbol", "text"), ("bid", "money"), ("ask", "money"), ("mid", "money"),
                          ("spread_bps", "number"), ("bid_size", "number"), ("ask_size", "number"),
                          ("quoted_at", "time")), rows)


@click.command()
@click.argument("name")
@row_format_options
@db_option
def activity(name: str, fmt: str, out: Path | None, db: str | None) -> None:
    """Account NAME's cash activity (current epoch) in time order, with the cash balance after each line.

    kind: initial (the epoch's opening deposit), deposit, withdrawal, or fill (with its symbol, side,
    quantity, price and fee). amount is what the line did to cash: a buy pays notional plus fee, a sell
    receives notional minus fee.
    """
    with reading(db) as conn:
        state = require_account(conn, name)
        movements = conn.execute(activity_stmt(state.id)).all()
    balance = Decimal(0)
    rows = []
    for row in movements:
        balance += row.amount_e6
        rows.append((row.at, row.kind, row.symbol, row.side, row.qty_e6, row.price_e6, row.fee_e6, row.amount_e6,
                     balance, row.order_id))
    print_rows(fmt, out, (("time", "time"), ("kind", "text"), ("symbol", "text"), ("side", "text"),
                          ("qty", "number"), ("price", "money"), ("fee", "money"), ("amount", "money"),
                          ("balance", "money"), ("order_id", "text")), rows)


COMMANDS = (accounts_command, account, order, orders, cancel, replace, close, expire, quote, activity)
