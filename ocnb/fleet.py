"""`Fleet`: what a notebook holds — gateway clients, the store they feed, and queries on it."""

from __future__ import annotations

import contextlib
import html
import inspect
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa

from ocnb.alerts import Alert, AlertBook, Firing, Rule
from ocnb.auth import MemoryDeviceTokens, resolve_url
from ocnb.client import GatewayClient
from ocnb.demo_gateway import DemoGateway
from ocnb.errors import ClientClosed, OcnbError, describe
from ocnb.feed import GatewayFeed
from ocnb.ops import READY, STATUS_ORDER
from ocnb.secret import Secret
from ocnb.store import FleetStore
from ocnb.times import as_utc

if TYPE_CHECKING:
    from ocnb.widgets import FleetGrid, Refresher
    from ocnb.widgets.refresher import Refreshable

log = logging.getLogger(__name__)

NOTIFY_INTERVAL = 0.25
STORE_FAILING = "store failing"
PROGRESS_THRESHOLD = 1000
DEMO_HISTORY_SECONDS = 30 * 60.0
DEMO_HISTORY_RUNS = 2_000  # a default history of about this many runs at most (large fleets)
PARQUET_ROW_GROUP = 10_000
STATUS_AFTER = 1.0  # seconds of waiting before the status line shows
TABLES = (
    "gateways",
    "agents",
    "sessions",
    "runs",
    "usage",
    "session_usage",
    "presence",
    "events",
    "sync_log",
    "alerts",
)


class Fleet:
    """One or more gateways mirrored live into one DuckDB store.

    Build it with `ocnb.connect()` or `ocnb.demo()`. Every frame method reads the store as it
    is now; nothing blocks on the network unless you ask (`call`, `wait_until`).
    """

    def __init__(self, store: FleetStore | str | Path | None = None) -> None:
        self.store = store if isinstance(store, FleetStore) else FleetStore(store)
        self._feeds: dict[str, GatewayFeed] = {}
        self._owned: list[DemoGateway] = []
        self._callbacks: list[Callable[[Fleet], None]] = []
        self._changed = threading.Condition()
        self._version = 0
        self._closed = False
        self._refresh: Refresher | None = None
        self._alerts: AlertBook | None = None
        self.store.on_commit(self._committed)
        self._notifier = threading.Thread(
            target=self._notify_forever, name="ocnb-notify", daemon=True
        )
        self._notifier.start()

    # --- gateways --------------------------------------------------------------------------------

    def add_gateway(
        self,
        url: str | None = None,
        token: str | Secret | None = None,
        *,
        name: str | None = None,
        **client_options: Any,
    ) -> GatewayClient:
        """Connect one more gateway into this fleet's store; returns its client."""
        name = name or _gateway_name(resolve_url(url))
        if name in self._feeds:
            raise ValueError(f"this fleet already has a gateway named {name!r}")
        feed = GatewayFeed(self.store, name, url, token, **client_options)
        self._feeds[name] = feed
        feed.start()
        return feed.client

    @property
    def clients(self) -> dict[str, GatewayClient]:
        """Each gateway's WebSocket client, by gateway name."""
        return {name: feed.client for name, feed in self._feeds.items()}

    @property
    def status(self) -> str:
        """`live` when every gateway is; otherwise the least healthy gateway's status, or
        `store failing` while the store cannot write (see `last_error`)."""
        if self.store.stats.pending:
            return STORE_FAILING
        statuses = self.statuses.values()
        return min(statuses, key=STATUS_ORDER.index) if statuses else "idle"

    @property
    def statuses(self) -> dict[str, str]:
        """Each gateway's status: the client's, or `polling (HTTP)` in the HTTP fallback."""
        return {name: feed.status for name, feed in self._feeds.items()}

    @property
    def last_error(self) -> BaseException | str | None:
        """Why the fleet is not live: the store's error while it fails, else a gateway's."""
        if self.store.stats.pending:
            return self.store.stats.last_error
        for feed in self._feeds.values():
            if feed.last_error is not None:
                return feed.last_error
        return self.store.stats.last_error

    @property
    def demo_gateway(self) -> DemoGateway | None:
        """The embedded gateway `ocnb.demo()` started (to pause, fast-forward or break it)."""
        return self._owned[0] if self._owned else None

    def catch_up(self, timeout: float = 30.0) -> Fleet:
        """Block until the store holds everything every gateway has sent so far (a round trip
        to each gateway: its answer comes after all the events it sent before)."""
        for name in self._feeds:
            self.call("health", gateway=name, timeout=timeout)
        self.store.flush(timeout)
        return self

    @property
    def settled(self) -> bool:
        """No gateway has a follow-up read pending (a roster refetch, a v3 session re-read)."""
        return not any(feed.follow_ups for feed in self._feeds.values())

    def wait_until_live(self, timeout: float = 60.0, *, progress: bool = True) -> Fleet:
        """Block until every gateway is live, with a progress bar while a large sync runs."""
        deadline = time.monotonic() + timeout
        for feed in self._feeds.values():
            _wait_for_feed(feed, deadline, timeout, progress)
        self.store.flush(max(1.0, deadline - time.monotonic()))
        return self

    # --- reading -----------------------------------------------------------------------------

    def sql(self, query: str, **params: Any) -> pd.DataFrame:
        """Run any DuckDB query on the store; `$name` placeholders take `name=` values."""
        return self.store.df(query, params or None)

    def arrow(self, query: str, **params: Any) -> pa.Table:
        """`sql()` as a pyarrow Table (no pandas conversion)."""
        return self.store.arrow(query, params or None)

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """`with fleet.snapshot():` the frames read inside (from this thread) all show the
        same moment, e.g. agent cards and the runs they count."""
        return self.store.snapshot()

    def agents(self) -> pd.DataFrame:
        """One row per agent: its config merged with live session state (`agent_cards`)."""
        return self.sql("SELECT * FROM agent_cards ORDER BY gateway, agent_id")

    def sessions(
        self, agent: str | None = None, active: bool | None = None, *, deleted: bool = False
    ) -> pd.DataFrame:
        """Sessions, newest first; filter by `agent`, by `active` run, or include `deleted`."""
        query = (
            "SELECT * EXCLUDE (partial, version) FROM sessions "
            "WHERE ($agent IS NULL OR agent_id = $agent) "
            "AND ($active IS NULL OR coalesce(has_active_run, false) = $active) "
            "AND ($deleted OR NOT deleted) ORDER BY updated_at DESC, session_key"
        )
        return self.sql(query, agent=self.known_agent(agent), active=active, deleted=deleted)

    def runs(self, agent: str | None = None) -> pd.DataFrame:
        """One row per run seen, with its duration, outcome, tokens and cost."""
        query = (
            "SELECT *, epoch_ms(ended_at) - epoch_ms(started_at) AS duration_ms FROM runs "
            "WHERE $agent IS NULL OR agent_id = $agent ORDER BY started_at DESC NULLS LAST"
        )
        return self.sql(query, agent=self.known_agent(agent))

    def known_agent(self, agent: str | None) -> str | None:
        """`agent` as given; warns (listing the known ids) when the store has never seen it."""
        if agent is not None:
            known = self.sql(
                "SELECT agent_id FROM agents UNION SELECT agent_id FROM sessions "
                "WHERE agent_id IS NOT NULL ORDER BY 1"
            )["agent_id"].tolist()
            if agent not in known:
                ids = ", ".join(map(str, known)) or "none yet"
                warnings.warn(f"no agent {agent!r} in this fleet (known: {ids})", stacklevel=3)
        return agent

    def events(
        self, since: Any = None, kinds: Sequence[str] | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        """The event log, oldest first: `since` a timestamp, only `kinds`, at most `limit`."""
        since_ts = None if since is None else as_utc(since)
        query = (
            "SELECT * FROM events WHERE ($since IS NULL OR received_at >= $since) "
            "AND ($kinds IS NULL OR list_contains($kinds, event)) ORDER BY received_at, seq"
        )
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return self.sql(query, since=since_ts, kinds=list(kinds) if kinds else None)

    def export_parquet(self, directory: str | Path) -> list[Path]:
        """Write every table to `<directory>/<table>.parquet`; returns the files."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        files = []
        for table in TABLES:
            path = target / f"{table}.parquet"
            # a row group is built in memory: the default 122,880 rows of the event log can be
            # more than the store's whole memory limit (seen: 70,000 events, 123 MB of payload)
            self.store.cursor().execute(
                f"COPY {table} TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {PARQUET_ROW_GROUP})"
            )
            files.append(path)
        return files

    # --- alerts ----------------------------------------------------------------------------------

    def alert(
        self,
        rule: Rule,
        on_fire: Callable[[Firing], Any] | None = None,
        *,
        name: str | None = None,
    ) -> Alert:
        """Watch a rule: SQL whose rows are what fires (by `subject` or first column), or a
        predicate `rule(fleet)`. Checked after each change and every few seconds; each subject
        fires once (`on_fire(firing)`, the `alerts` table, the grid) until it stops matching."""
        if self._alerts is None:
            self._alerts = AlertBook(self)
        default = getattr(rule, "__name__", "<lambda>")
        if name is None:
            name = default if default != "<lambda>" else f"alert-{len(self._alerts.alerts) + 1}"
        return self._alerts.add(Alert(name, rule, on_fire))

    def alerts(self, *, firing: bool = False) -> pd.DataFrame:
        """Every alert fired so far (or only those still firing), newest first."""
        return self.sql(
            "SELECT * FROM alerts WHERE NOT $firing OR resolved_at IS NULL "
            "ORDER BY fired_at DESC, alert, subject",
            firing=firing,
        )

    @property
    def firing(self) -> list[Firing]:
        """What is firing now, across every alert."""
        return [] if self._alerts is None else self._alerts.firing()

    # --- views -----------------------------------------------------------------------------------

    def grid(
        self, columns: list[str] | None = None, refresh_hz: float = 4.0, theme: str = "auto"
    ) -> FleetGrid:
        """A grid of every agent that refreshes itself (up to `refresh_hz`) while you work."""
        from ocnb.widgets import FleetGrid

        grid = FleetGrid(self, columns=columns, theme=theme)
        self.keep_fresh(grid, refresh_hz)
        return grid

    def keep_fresh(self, widget: Refreshable, refresh_hz: float | None = None) -> Refresher:
        """Refresh `widget` after store changes, on the fleet's one refresher thread (started
        with the first widget, at `refresh_hz` or 4 a second); returns that refresher."""
        if self._refresh is None:
            from ocnb.widgets import Refresher

            refresher = Refresher(refresh_hz or 4.0)
            self.on_change(lambda fleet: refresher.changed())
            self._refresh = refresher
        self._refresh.add(widget)
        return self._refresh

    # --- the network ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        gateway: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """An RPC to one gateway (the only one, or the one named)."""
        return self._client(gateway).call(method, params, timeout)

    async def acall(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        gateway: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`call()` for `await` in a notebook cell."""
        return await self._client(gateway).acall(method, params, timeout)

    def _client(self, gateway: str | None) -> GatewayClient:
        if gateway is None:
            if len(self._feeds) != 1:
                raise ValueError(f"name the gateway: one of {sorted(self._feeds)}")
            return next(iter(self._feeds.values())).client
        return self._feeds[gateway].client

    # --- change notification -------------------------------------------------------------------

    def on_change(self, callback: Callable[[Fleet], None]) -> Callable[[Fleet], None]:
        """Call `callback(fleet)` after the store changes, at most four times a second."""
        self._callbacks.append(callback)
        return callback

    def wait_until(self, predicate: Callable[[Fleet], Any], timeout: float = 30.0) -> Fleet:
        """Block until `predicate(fleet)` is true, re-checking after each store change."""
        if self.store.in_snapshot:
            raise RuntimeError("wait_until inside fleet.snapshot() would never see a change")
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._version
            if predicate(self):
                return self
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout:g} s")
            with self._changed:
                if self._version == seen:
                    self._changed.wait(min(remaining, 1.0))

    def _committed(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _notify_forever(self) -> None:
        notified = 0
        while not self._closed:
            with self._changed:
                if self._version == notified:
                    self._changed.wait(1.0)
                    continue
                notified = self._version
            for callback in list(self._callbacks):
                try:
                    callback(self)
                except Exception:
                    log.exception("ocnb on_change callback %r failed", callback)
            time.sleep(NOTIFY_INTERVAL)

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Disconnect every gateway, stop any demo gateway this fleet started, close the store."""
        if self._closed:
            return
        self._closed = True
        for feed in self._feeds.values():
            feed.close()
        for gateway in self._owned:
            gateway.stop()
        with contextlib.suppress(TimeoutError):  # a failing store still closes
            self.store.flush(5)  # the feeds' last status (closed) reaches the grid
        if self._refresh is not None:
            self._refresh.stop()
        if self._alerts is not None:
            self._alerts.stop()
        with self._changed:
            self._changed.notify_all()
        self._notifier.join(5)
        self.store.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        gateways = ", ".join(f"{name} {status}" for name, status in self.statuses.items())
        store = f"store {self.store.path}{self._dropped()}"
        return f"<Fleet {self.status}: {gateways or 'no gateways'}; {store}>"

    def _dropped(self) -> str:
        """The operations the store refused, if any (values it cannot hold: see `FleetStore`)."""
        dropped = self.store.stats.dropped
        plural = "s" if dropped > 1 else ""
        return f"; {dropped} operation{plural} dropped (see fleet.store.stats)" if dropped else ""

    def _repr_html_(self) -> str:
        counts = self.sql(
            "SELECT (SELECT count(*) FROM agents WHERE NOT removed) AS agents, "
            "(SELECT count(*) FROM sessions WHERE NOT deleted) AS sessions, "
            "(SELECT count(*) FROM events) AS events"
        ).to_dict("records")[0]
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(feed.client.url)}</td>"
            f"<td>{html.escape(feed.status)}</td>"
            f"<td>v{feed.client.protocol or '?'} "
            f"{html.escape(feed.client.server_version or '')}</td></tr>"
            for name, feed in self._feeds.items()
        )
        return (
            f"<div><b>ocnb Fleet</b> — {html.escape(self.status)}: {counts['agents']} agents, "
            f"{counts['sessions']} sessions, {counts['events']} events"
            f"{html.escape(self._dropped())}"
            f"<table><tr><th>gateway</th><th>url</th><th>status</th><th>server</th></tr>{rows}"
            "</table></div>"
        )


def _wait_for_feed(feed: GatewayFeed, deadline: float, timeout: float, progress: bool) -> None:
    """Wait for one gateway to be live. With `progress`, a line shows its status once the wait
    passes a second, and a bar its sync when that is a large one."""
    status_line = bar = None
    shown = ""
    started, refusals = time.monotonic(), feed.client.stats.refusals
    try:
        while True:
            status = feed.status  # read before the checks: a change after them ends the wait
            if status in READY:
                break
            if status == "failed":
                raise feed.last_error or OcnbError(f"{feed.name} failed")
            if status == "closed":
                raise ClientClosed(f"{feed.name} was closed")
            if (unreachable := feed.client.unreachable(refusals)) is not None:
                raise unreachable
            if progress and status_line is None and time.monotonic() - started > STATUS_AFTER:
                from tqdm.auto import tqdm

                status_line = tqdm(total=None, bar_format="{desc}", leave=False)
            if status_line is not None and (line := _waiting_for(feed, status)) != shown:
                status_line.set_description_str(shown := line)
            if progress and bar is None and (feed.total_sessions or 0) > PROGRESS_THRESHOLD:
                from tqdm.auto import tqdm

                bar = tqdm(total=feed.total_sessions, desc=f"sync {feed.name}", unit="sessions")
            if bar is not None and bar.n != feed.synced_sessions:
                bar.update(feed.synced_sessions - bar.n)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{feed.name} not live after {timeout:g} s "
                    f"(status {status}, last error: {feed.last_error!r})"
                )
            feed.wait_for_change(status, min(0.1, remaining))
        if bar is not None and feed.total_sessions is not None:  # live: the sync is complete
            bar.update(feed.total_sessions - bar.n)
    finally:
        for progress_bar in (status_line, bar):
            if progress_bar is not None:
                progress_bar.close()


def _waiting_for(feed: GatewayFeed, status: str) -> str:
    """One line on a gateway not live yet: `demo: connecting, attempt 2 (last: …)`."""
    attempts = feed.client.stats.attempts
    line = f"{feed.name}: {status}" + (f", attempt {attempts}" if attempts > 1 else "")
    error = feed.last_error
    return f"{line} (last: {describe(error)[:120]})" if error is not None else line


def _gateway_name(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def connect(
    url: str | Sequence[str] | None = None,
    token: str | Secret | None = None,
    *,
    store: FleetStore | str | Path | None = None,
    wait: bool | float = True,
    timeout: float = 60.0,
    **client_options: Any,
) -> Fleet:
    """Mirror one gateway (or several: a list of URLs, one token) into a new `Fleet`.

    `wait`: block until live (up to `timeout` seconds), a number of seconds to wait instead,
    or False to return at once. A first connect refused at once raises `GatewayUnreachable`
    within seconds."""
    wait_for = _wait_seconds(wait, timeout)
    fleet = Fleet(store)
    try:
        for one in [url] if url is None or isinstance(url, str) else url:
            fleet.add_gateway(one, token, **client_options)
        if wait_for is not None:
            fleet.wait_until_live(wait_for)
    except BaseException:
        fleet.close()
        raise
    return fleet


def _wait_seconds(wait: bool | float, timeout: float) -> float | None:
    """`wait=` as seconds to wait (None: do not wait); refuses what is neither."""
    if isinstance(wait, bool):
        return timeout if wait else None
    if isinstance(wait, int | float) and wait > 0:
        return float(wait)
    raise TypeError(f"wait= takes True, False or a number of seconds > 0, not {wait!r}")


def demo(
    *,
    store: FleetStore | str | Path | None = None,
    wait: bool = True,
    history: str | bool = True,
    **demo_options: Any,
) -> Fleet:
    """A `Fleet` on a fresh embedded demo gateway (see `DemoGateway` for the options).

    `history`: how much of the fleet's recent past the demo plays at once after the fleet
    connects, so the first look is a fleet at work: the scenario starts that long ago and
    catches up with the clock. True (the default) plays the last 30 minutes, less for a fleet
    so large that they would hold more than ~2,000 runs, and nothing with `wait=False`; a
    duration (`"2h"`) plays exactly that; False nothing."""
    played = _history_seconds(history, demo_options)
    if not wait:
        if played and history is not True:
            raise ValueError("history= is played to the connected fleet: it needs wait=True")
        played = 0.0
    paused = demo_options.pop("paused", False)
    start_ms = demo_options.pop("start_ms", int((time.time() - played) * 1000))
    gateway = DemoGateway(**demo_options, start_ms=start_ms, paused=True).start()
    fleet = Fleet(store)
    fleet._owned.append(gateway)
    try:
        fleet.add_gateway(
            gateway.url, gateway.token, name="demo", device_tokens=MemoryDeviceTokens()
        )  # the gateway's pairing ends with it
        if wait:
            fleet.wait_until_live()
        if played:
            gateway.fast_forward(played)
            fleet.catch_up()
        if not paused:
            gateway.resume()
    except BaseException:
        fleet.close()
        raise
    return fleet


def _history_seconds(history: str | bool, demo_options: dict[str, Any]) -> float:
    """`history=` as seconds of scenario to play (see `demo`)."""
    if history is False:
        return 0.0
    if history is True:
        defaults = inspect.signature(DemoGateway).parameters
        agents = int(demo_options.get("agents", defaults["agents"].default))
        rate = float(demo_options.get("run_rate", defaults["run_rate"].default))
        rate = 1.0 if demo_options.get("firehose") else rate
        return min(DEMO_HISTORY_SECONDS, DEMO_HISTORY_RUNS / max(1e-9, agents * rate))
    try:
        seconds = pd.Timedelta(history).total_seconds()
    except (ValueError, TypeError):
        seconds = -1.0
    if seconds < 0:
        raise ValueError(
            f"history= takes True, False or a duration such as '30min' or '2h': {history!r}"
        )
    return seconds
