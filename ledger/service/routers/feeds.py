"""``POST /v1/ledger/quotes``: a quote feed for the authenticated account (not an Alpaca endpoint).

Each quote is stored by the library in its own transaction and fills the resting orders it crosses, exactly
as ``paper-ledger quote set`` does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from ledger.service import errors
from ledger.service.auth import Caller, caller
from ledger.service.routers import ERRORS
from ledger.service.wire import QuoteFeedResult, QuoteIn, order_uuid

router = APIRouter(responses=ERRORS)
CallerDep = Annotated[Caller, Depends(caller)]


@router.post("/v1/ledger/quotes", response_model=QuoteFeedResult)
def post_quotes(quotes: Annotated[list[QuoteIn], Field(max_length=1000)], who: CallerDep) -> QuoteFeedResult:
    # One transaction for the whole list (a symbol at most once): all stored, and the fills they make, or none.
    if len(quotes) != len({q.symbol for q in quotes}):
        raise errors.unprocessable("a symbol may appear once per request")
    fills = who.broker.set_quotes({q.symbol: (q.bid, q.ask, q.bid_size, q.ask_size) for q in quotes})
    return QuoteFeedResult(quotes=len(quotes), fills=[
        {"order_id": order_uuid(fill["order_id"]), "symbol": fill["symbol"], "side": fill["side"].lower(),
         "qty": fill["qty"], "price": fill["fill_price"], "timestamp": fill["timestamp"]}
        for fill in fills
    ])
