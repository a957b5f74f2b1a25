"""``/stream``: the ``trade_updates`` websocket of ``TradingStream(url_override="ws://host:port/stream")``.

Fed by polling the ledger's ``order_events`` (every ``POLL_SECONDS``), so a change made by any process (another
worker, the CLI, a replay) reaches every listener of that account. Each event carries the order as it is when
the event is sent, and for fills the price and quantity of the fills recorded at the event's time.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select

from ledger.db.models import Fill, Order, OrderEvent, Position
from ledger.service.auth import check_key
from ledger.service.errors import ApiError
from ledger.service.state import ServiceLedger
from ledger.money import round_amount
from ledger.service.wire import decimal_text, render_order, time_text

router = APIRouter()
POLL_SECONDS = 0.2
EVENTS = {"new": "new", "filled": "fill", "partially_filled": "partial_fill", "canceled": "canceled",
          "expired": "expired", "replaced": "replaced", "rejected": "rejected"}
events, orders, fills, positions = OrderEvent.__table__, Order.__table__, Fill.__table__, Position.__table__


def _last_event_id(ledger: ServiceLedger, account_id: int) -> int:
    with ledger.reading() as conn:
        stmt = select(func.max(events.c.id)).select_from(events.join(orders, orders.c.id == events.c.order_id))
        return conn.execute(stmt.where(orders.c.account_id == account_id)).scalar_one() or 0


def _new_events(ledger: ServiceLedger, account_id: int, after: int) -> list[Any]:
    with ledger.reading() as conn:
        return list(conn.execute(
            select(events.c.id, events.c.at, events.c.to_status, orders.c.id.label("order_pk"), orders.c.order_id,
                   orders.c.symbol, orders.c.epoch)
            .select_from(events.join(orders, orders.c.id == events.c.order_id))
            .where(orders.c.account_id == account_id, events.c.id > after)
            .order_by(events.c.id)
            .limit(500)
        ))


def _message(ledger: ServiceLedger, owner: Any, event: Any) -> dict[str, Any]:
    order = ledger.exact_order(owner.account_id, event.order_id)
    data: dict[str, Any] = {"event": EVENTS.get(event.to_status, event.to_status), "timestamp": time_text(event.at),
                            "order": render_order(order).model_dump()}  # type: ignore[arg-type]
    if event.to_status in ("filled", "partially_filled"):
        with ledger.reading() as conn:
            executed = list(conn.execute(select(fills.c.qty_e6, fills.c.price_e6).where(
                fills.c.order_id == event.order_pk, fills.c.filled_at == event.at)))
            position = conn.execute(select(positions.c.qty_e6).where(
                positions.c.account_id == owner.account_id, positions.c.epoch == event.epoch,
                positions.c.symbol == event.symbol)).scalar_one_or_none()
        if executed:
            qty = sum(row.qty_e6 for row in executed)
            average = round_amount(sum(row.qty_e6 * row.price_e6 for row in executed) / qty)
            data.update(price=decimal_text(average), qty=decimal_text(qty), position_qty=decimal_text(position or 0))
    return {"stream": "trade_updates", "data": data}


async def _authenticate(socket: WebSocket, ledger: ServiceLedger) -> Any:
    message = json.loads(await socket.receive_text())
    data = message.get("data") or {} if isinstance(message, dict) else {}
    if message.get("action") != "authenticate" or not isinstance(data, dict):
        raise ApiError(401, 40110000, "authenticate first")
    pair = (str(data.get("key_id") or ""), str(data.get("secret_key") or ""))
    return await asyncio.to_thread(check_key, ledger, pair)


@router.websocket("/stream")
@router.websocket("/stream/")
async def trade_updates(socket: WebSocket) -> None:
    ledger: ServiceLedger = socket.app.state.ledger
    await socket.accept()
    try:
        try:
            owner = await _authenticate(socket, ledger)
        except (ApiError, ValueError, AttributeError):
            await socket.send_text(json.dumps({"stream": "authorization",
                                               "data": {"action": "authenticate", "status": "unauthorized"}}))
            await socket.close(code=1008)
            return
        await socket.send_text(json.dumps({"stream": "authorization",
                                           "data": {"action": "authenticate", "status": "authorized"}}))
        listening = False
        last = 0
        while True:
            try:
                raw = await asyncio.wait_for(socket.receive_text(), timeout=POLL_SECONDS)
                request = json.loads(raw)
                streams = (request.get("data") or {}).get("streams") or [] if request.get("action") == "listen" else None
                if streams is not None:
                    listening = "trade_updates" in streams
                    last = await asyncio.to_thread(_last_event_id, ledger, owner.account_id)
                    await socket.send_text(json.dumps({"stream": "listening", "data": {"streams": streams}}))
            except asyncio.TimeoutError:
                pass
            except (ValueError, AttributeError):
                await socket.send_text(json.dumps({"stream": "error", "data": {"error_message": "invalid message"}}))
            if listening:
                for event in await asyncio.to_thread(_new_events, ledger, owner.account_id, last):
                    last = event.id
                    message = await asyncio.to_thread(_message, ledger, owner, event)
                    await socket.send_text(json.dumps(message))
    except WebSocketDisconnect:
        return
