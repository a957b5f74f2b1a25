"""The dashboard in a real headless Chromium against a real `paper-ledger serve`, on SQLite and PostgreSQL.

Orders are placed through the HTTP API and quotes set through the quote feed or by `paper-ledger quote set` in
another process; what the pages show is compared with the ledger (PaperBroker, the orders table, the CLI's CSV).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlparse

import httpx
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.service_support import Server, engine_name, ledger_verified, service  # noqa: F401 - fixtures
from tests.web_support import DOCS_SCREENSHOT, WAIT_SECONDS, WRITE_SCREENSHOT, browser, page, sign_in  # noqa: F401


def place(server: Server, account: str, **order: Any) -> str:
    """Submit an order through the API; returns its ledger order id (32 hex digits)."""
    body = {"time_in_force": "gtc", "type": "market", **{key: str(value) for key, value in order.items()}}
    response = httpx.post(server.url + "/v2/orders", json=body, headers=server.headers(account))
    assert response.status_code == 200, response.text
    return uuid.UUID(response.json()["id"]).hex


def quote(server: Server, account: str, symbol: str, bid: str, ask: str) -> None:
    server.set_quotes(account, {"symbol": symbol, "bid": bid, "ask": ask})


def cli(server: Server, *args: str) -> str:
    """Run `paper-ledger ARGS --db URL` in another process (no LEDGER_* setting of this one leaks in)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    done = subprocess.run([sys.executable, "-m", "ledger.cli", *args, "--db", server.db_url], env=env,
                          cwd=server.workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def order_status(server: Server, order_id: str) -> str:
    from sqlalchemy import select

    from ledger.db.engine import dispose_engines, get_engine, read_transaction
    from ledger.db.models import Order

    with get_engine(server.db_url).connect() as conn, read_transaction(conn):
        status = conn.execute(select(Order.status).where(Order.order_id == order_id)).scalar_one()
    dispose_engines()
    return status


def cell_number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def wait(driver: Any) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_SECONDS)


def left_the_page(element: Any) -> Any:
    """``ec.staleness_of``, also when chromedriver reports the element's node gone from the document as an
    "unknown error" (it does so while the next page loads) rather than as a stale element reference."""
    def gone(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False
    return gone


def test_without_a_session_only_the_sign_in_page_answers_and_a_wrong_key_is_refused(page: Any, service: Server) -> None:
    page.get(service.url + "/ui/accounts/alice")
    wait(page).until(ec.url_contains("/ui/login"))
    assert page.find_element(By.ID, "key_id").get_attribute("required") is not None
    page.find_element(By.ID, "key_id").send_keys(service.keys["alice"][0])
    page.find_element(By.ID, "secret_key").send_keys("not-the-secret")
    page.find_element(By.ID, "sign-in").click()
    error = wait(page).until(ec.visibility_of_element_located((By.ID, "login-error")))
    assert "do not match" in error.text
    page.expected_console_errors = ("/ui/login",)  # the refused sign-in answers 401, which Chromium logs
    cookie = page.get_cookie("ledger_session")
    assert cookie is None, "a refused sign-in sets no session"


def test_signed_in_account_page_shows_the_ledgers_positions_cash_and_an_equity_curve(page: Any, service: Server) -> None:
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines

    with PaperBroker(account="alice", db_url=service.db_url) as broker:
        broker.configure(max_margin_multiplier=2, shorting_enabled=True)  # a margin account that sells short
    dispose_engines()
    quote(service, "alice", "SHRT", "30", "30.10")
    place(service, "alice", symbol="SHRT", side="sell", qty=5)
    quote(service, "alice", "SYN", "100", "100.10")
    place(service, "alice", symbol="SYN", side="buy", qty=120)
    quote(service, "alice", "SYN", "92", "92.10")
    place(service, "alice", symbol="SYN", side="sell", qty=20)
    quote(service, "alice", "SYN", "97.5", "97.6")
    place(service, "alice", symbol="SYN", side="buy", qty=10)
    quote(service, "alice", "BRK-B", "410.25", "410.75")
    place(service, "alice", symbol="BRK-B", side="buy", qty="2.5")

    sign_in(page, service, "alice")
    table = wait(page).until(ec.presence_of_element_located((By.ID, "positions")))
    shown = {row.get_attribute("data-symbol"): cell_number(row.find_element(By.CSS_SELECTOR, "td.qty").text)
             for row in table.find_elements(By.CSS_SELECTOR, "tbody tr[data-symbol]")}

    with PaperBroker(account="alice", db_url=service.db_url) as broker:
        ledger_positions = {symbol: Decimal(str(qty)) for symbol, qty in broker.get_positions().items()}
        cash = Decimal(str(broker.get_cash()))
        account = broker.get_account()
    dispose_engines()
    assert shown == ledger_positions, "the page's positions are the ledger's"
    assert shown["BRK-B"] == Decimal("2.5") and shown["SHRT"] == Decimal(-5)
    assert cell_number(page.find_element(By.ID, "cash").text) == cash
    assert cell_number(page.find_element(By.ID, "buying-power").text) == Decimal(str(account["buying_power"]))
    assert cell_number(page.find_element(By.ID, "short-value").text) == Decimal(str(account["short_market_value"]))
    daily = [[cell.text for cell in cells] for row in page.find_elements(By.CSS_SELECTOR, "#daily-pnl tbody tr")
             if len(cells := row.find_elements(By.TAG_NAME, "td")) == 10]
    syn = [row for row in daily if row[1] == "SYN"]  # (one row a day: two if the test spans midnight UTC)
    assert [sum(cell_number(row[column]) for row in syn) for column in (2, 3, 4)] == [3, 130, 20], daily
    assert page.find_element(By.CSS_SELECTOR, "#equity-chart polyline.equity").get_attribute("points")
    assert page.find_element(By.CSS_SELECTOR, "#equity-chart polygon.drawdown").get_attribute("points")
    for header in page.find_elements(By.CSS_SELECTOR, "#positions thead th.num"):
        assert header.value_of_css_property("text-align") == "right"
    if WRITE_SCREENSHOT:
        page.save_screenshot(str(DOCS_SCREENSHOT))


def test_dragging_across_the_equity_chart_or_the_range_form_zooms_into_that_time_range(
    page: Any, service: Server
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    from ledger.db.engine import dispose_engines
    from ledger.reports import equity_points

    for price in ("20", "21", "22", "23"):
        quote(service, "alice", "ZOOM", price, price)
        place(service, "alice", symbol="ZOOM", side="buy", qty=1)
    marks = [point["timestamp"] for point in equity_points(service.db_url, "alice")][-4:]
    dispose_engines()

    sign_in(page, service, "alice")
    chart = wait(page).until(ec.presence_of_element_located((By.ID, "equity-chart")))
    start, end = (datetime.fromisoformat(chart.get_attribute(name)) for name in ("data-start", "data-end"))
    width = chart.size["width"]
    ActionChains(page).move_to_element_with_offset(chart, -width // 4, 0).click_and_hold() \
        .move_by_offset(width // 2, 0).release().perform()
    wait(page).until(ec.url_contains("from="))
    chosen = parse_qs(urlparse(page.current_url).query)
    since, until = (datetime.fromisoformat(chosen[name][0].replace("Z", "+00:00")) for name in ("from", "to"))
    assert start < since < until < end, "the dragged middle half of the chart"
    assert page.find_element(By.ID, "zoom-from").get_attribute("value") == chosen["from"][0]
    zoomed = page.find_elements(By.ID, "equity-chart")
    if zoomed:  # else the page says this range holds no mark
        assert since <= datetime.fromisoformat(zoomed[0].get_attribute("data-start"))
        assert datetime.fromisoformat(zoomed[0].get_attribute("data-end")) <= until
    else:
        assert "No equity marks in this range" in page.find_element(By.ID, "chart-live").text

    # The keyboard way: the labelled range form, here over the last four marks (at full resolution).
    for field, moment in (("zoom-from", marks[0]), ("zoom-to", marks[-1])):
        box = page.find_element(By.ID, field)
        box.clear()
        box.send_keys(moment.isoformat())
    page.find_element(By.ID, "zoom-apply").click()
    wait(page).until(ec.url_contains("from=" + quote_plus(marks[0].isoformat())))
    zoomed_chart = page.find_element(By.ID, "equity-chart")
    assert [datetime.fromisoformat(zoomed_chart.get_attribute(name)) for name in ("data-start", "data-end")] == [
        marks[0], marks[-1]]
    assert f"{len(set(marks))} points" in page.find_element(By.ID, "chart-desc").get_attribute("textContent")


def test_cancel_a_resting_order_by_clicking_and_the_ledger_has_it_canceled(page: Any, service: Server) -> None:
    quote(service, "alice", "CNCL", "50", "50.10")
    order_id = place(service, "alice", symbol="CNCL", side="buy", qty=3, type="limit", limit_price="40")
    sign_in(page, service, "alice")
    row = wait(page).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, f"#open-orders tr[data-order-id='{order_id}']")))
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(page).until(left_the_page(row))
    wait(page).until(ec.presence_of_element_located((By.ID, "open-orders")))
    assert not page.find_elements(By.CSS_SELECTOR, f"#open-orders tr[data-order-id='{order_id}']")
    assert order_status(service, order_id) == "canceled"


def test_a_fill_caused_by_quote_set_in_another_process_appears_live(page: Any, service: Server) -> None:
    quote(service, "alice", "LIVE", "20", "20.10")
    order_id = place(service, "alice", symbol="LIVE", side="buy", qty=7, type="limit", limit_price="19")
    sign_in(page, service, "alice")
    wait(page).until(ec.presence_of_element_located((By.CSS_SELECTOR, f"#open-orders tr[data-order-id='{order_id}']")))
    page.execute_script("window.sameDocument = true;")  # gone if the page were reloaded instead of updated

    cli(service, "quote", "set", "LIVE", "--bid", "18.80", "--ask", "18.90", "--account", "alice")

    fill_row = wait(page).until(ec.presence_of_element_located(
        (By.XPATH, f"//table[@id='recent-fills']//a[normalize-space()='{order_id}']")))
    assert fill_row.is_displayed()
    position = page.find_element(By.CSS_SELECTOR, "#positions tr[data-symbol='LIVE'] td.qty")
    assert cell_number(position.text) == 7
    assert not page.find_elements(By.CSS_SELECTOR, f"#open-orders tr[data-order-id='{order_id}']")
    assert page.execute_script("return window.sameDocument === true;"), "updated in place, not reloaded"


def test_an_orders_page_lists_every_order_event_and_its_fills(page: Any, service: Server) -> None:
    quote(service, "alice", "HIST", "10", "10.05")
    order_id = place(service, "alice", symbol="HIST", side="buy", qty=4, type="limit", limit_price="9.5")
    quote(service, "alice", "HIST", "9.40", "9.45")
    sign_in(page, service, "alice")
    page.get(service.url + "/ui/accounts/alice/orders?symbol=hist")
    page.find_element(By.XPATH, f"//table[@id='orders']//a[normalize-space()='{order_id}']").click()
    wait(page).until(ec.presence_of_element_located((By.ID, "order-events")))
    events = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
              for row in page.find_elements(By.CSS_SELECTOR, "#order-events tbody tr")]

    from sqlalchemy import select

    from ledger.db.engine import dispose_engines, get_engine, read_transaction
    from ledger.db.models import Order, OrderEvent

    with get_engine(service.db_url).connect() as conn, read_transaction(conn):
        stored = conn.execute(
            select(OrderEvent.id, OrderEvent.to_status).join(Order, Order.id == OrderEvent.order_id)
            .where(Order.order_id == order_id).order_by(OrderEvent.id)
        ).all()
    dispose_engines()
    assert [(int(cells[0]), cells[3]) for cells in events] == [(row.id, row.to_status) for row in stored]
    assert [cells[3] for cells in events][-1] == "filled"
    assert page.find_element(By.ID, "order-status").text == "filled"
    fills = page.find_elements(By.CSS_SELECTOR, "#order-fills tbody tr")
    assert len(fills) == 1 and "9.45" in fills[0].text


def test_the_fills_csv_download_is_the_clis_fills_csv(page: Any, service: Server) -> None:
    quote(service, "alice", "CSV", "30", "30.20")
    place(service, "alice", symbol="CSV", side="buy", qty=5)
    sign_in(page, service, "alice")
    page.get(service.url + "/ui/accounts/alice/fills")
    for stale in page.download_dir.glob("*"):
        stale.unlink()
    page.find_element(By.ID, "download-csv").click()
    target = page.download_dir / "fills-alice.csv"
    wait(page).until(lambda _driver: target.exists() and target.stat().st_size > 0)
    downloaded = target.read_text()
    assert downloaded == cli(service, "fills", "alice", "--format", "csv")
    assert "CSV" in downloaded


def test_another_accounts_key_sees_none_of_the_first_accounts_data_and_an_admin_key_sees_both(
        page: Any, service: Server) -> None:
    quote(service, "alice", "PRIV", "60", "60.10")
    secret_order = place(service, "alice", symbol="PRIV", side="buy", qty=1, type="limit", limit_price="50")
    sign_in(page, service, "bob")
    for own in ("", "/orders", "/fills"):
        page.get(f"{service.url}/ui/accounts/bob{own}")
        assert secret_order not in page.page_source and "PRIV" not in page.page_source
    foreign = [f"/ui/accounts/alice{suffix}" for suffix in (
        "", "/orders", "/fills", "/fills?format=csv", f"/orders/{secret_order}", "/version")]
    foreign.append(f"/ui/accounts/bob/orders/{secret_order}")
    for path in foreign:
        page.get(service.url + path)
        assert page.find_element(By.TAG_NAME, "h1").text == "Not found", path
        assert secret_order not in page.page_source.replace(path, "")
        assert "PRIV" not in page.page_source
    page.expected_console_errors = tuple(foreign)
    # Cancelling the other account's order from bob's session is a 404 too, and changes nothing.
    page.get(service.url + "/ui/accounts/bob")
    csrf = page.execute_script("return document.querySelector('input[name=csrf_token]').value;")
    answer = httpx.post(f"{service.url}/ui/accounts/alice/orders/{secret_order}/cancel",
                        data={"csrf_token": csrf}, cookies={"ledger_session": page.get_cookie("ledger_session")["value"]})
    assert answer.status_code == 404
    assert order_status(service, secret_order) == "new"

    # An admin key sees both accounts, opens alice's and cancels her order through the same button.
    from ledger.book.keys import create_admin_key
    from ledger.db.engine import dispose_engines, get_engine

    admin_key, admin_secret = create_admin_key(get_engine(service.db_url))
    dispose_engines()
    page.delete_all_cookies()
    page.get(service.url + "/ui/login")
    page.find_element(By.ID, "key_id").send_keys(admin_key)
    page.find_element(By.ID, "secret_key").send_keys(admin_secret)
    page.find_element(By.ID, "sign-in").click()
    listed = wait(page).until(ec.presence_of_element_located((By.ID, "accounts")))
    names = [link.text for link in listed.find_elements(By.CSS_SELECTOR, "tbody th a")]
    assert {"alice", "bob"} <= set(names)
    page.find_element(By.LINK_TEXT, "alice").click()
    row = wait(page).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, f"#open-orders tr[data-order-id='{secret_order}']")))
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(page).until(left_the_page(row))
    assert order_status(service, secret_order) == "canceled"
