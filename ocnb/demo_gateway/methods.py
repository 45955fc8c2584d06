"""The RPCs the demo gateway answers, from its world, with real gateways' params and errors.

A method returns its payload and the happenings it caused (a run started, a session created),
which the gateway then publishes as events. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ocnb.demo_gateway import payloads
from ocnb.demo_gateway.refusals import Refusal, closed, integer, invalid_params, missing_scope
from ocnb.demo_gateway.world import Happening, Session, World

READ, WRITE, ADMIN = "operator.read", "operator.write", "operator.admin"
SATISFIES = {READ: {READ, WRITE, ADMIN}, WRITE: {WRITE, ADMIN}, ADMIN: {ADMIN}}
Result = tuple[Any, list[Happening]]


class Caller(Protocol):
    """What a method may know of and change on the connection that called it."""

    scopes: frozenset[str]
    subscribed: bool


class Methods:
    """Answers RPCs for one demo world speaking one protocol version."""

    def __init__(self, world: World, protocol: int) -> None:
        self.world = world
        self.protocol = protocol
        self.version = "2026.9.6" if protocol >= 4 else "2026.5.7"
        self.stale_usage: tuple[list[Session], int] | None = None  # (cached sessions, answers)
        self.table: dict[str, tuple[str, Callable[[Caller, dict[str, Any]], Result]]] = {
            "agents.list": (READ, self.agents_list),
            "sessions.list": (READ, self.sessions_list),
            "sessions.subscribe": (READ, self.subscribe),
            "sessions.unsubscribe": (READ, self.unsubscribe),
            "sessions.describe": (READ, self.describe),
            "sessions.usage": (READ, self.sessions_usage),
            "health": (READ, self.health),
            "status": (READ, self.status),
            "system-presence": (READ, self.system_presence),
            "usage.cost": (READ, self.usage_cost),
            "chat.send": (WRITE, self.chat_send),
            "chat.abort": (WRITE, self.chat_abort),
            "sessions.create": (WRITE, self.sessions_create),
            "sessions.delete": (WRITE, self.sessions_delete),
            "agents.create": (ADMIN, self.agents_create),
            "agents.update": (ADMIN, self.agents_update),
            "agents.delete": (ADMIN, self.agents_delete),
        }

    def call(self, caller: Caller, method: Any, params: dict[str, Any]) -> Result:
        """Check the caller's scope and run `method`; raise the `Refusal` a gateway would send."""
        entry = self.table.get(method) if isinstance(method, str) else None
        if entry is None:  # real gateways resolve unknown methods to the admin scope first
            if ADMIN not in caller.scopes:
                raise missing_scope(ADMIN, self.protocol)
            raise Refusal("INVALID_REQUEST", f"unknown method: {method}")
        scope, handler = entry
        if not caller.scopes & SATISFIES[scope]:
            raise missing_scope(scope, self.protocol)
        return handler(caller, params)

    # --- reads ---------------------------------------------------------------------------------

    def agents_list(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("agents.list", params, ())
        return payloads.agents_list(self.world, self.protocol), []

    def sessions_list(self, caller: Caller, params: dict[str, Any]) -> Result:
        allowed: tuple[str, ...] = ("limit", "agentId", "activeOnly", "search", "archived")
        if self.protocol >= 4:
            allowed += ("offset",)
        closed("sessions.list", params, allowed)
        limit = integer("sessions.list", params, "limit", minimum=1, default=100)
        offset = integer("sessions.list", params, "offset", minimum=0, default=0)
        sessions = sorted(self.world.sessions.values(), key=lambda s: (-s.updated_at, s.key))
        agent_id = params.get("agentId")
        if agent_id is not None:
            sessions = [s for s in sessions if s.agent_id == agent_id]
        if params.get("activeOnly"):
            sessions = [s for s in sessions if s.active_run_id is not None]
        search = params.get("search")
        if isinstance(search, str) and search:
            sessions = [s for s in sessions if search.lower() in s.key.lower()]
        page = sessions[offset : offset + limit]
        rows = [payloads.session_row(s, self.world, self.protocol) for s in page]
        answer = payloads.sessions_list(
            self.world, self.protocol, rows, total=len(sessions), offset=offset, limit=limit
        )
        return answer, []

    def subscribe(self, caller: Caller, params: dict[str, Any]) -> Result:
        caller.subscribed = True
        if params and self.protocol >= 4:
            listed, _ = self.sessions_list(caller, params)
            return {"subscribed": True, "list": listed}, []
        return {"subscribed": True}, []

    def unsubscribe(self, caller: Caller, params: dict[str, Any]) -> Result:
        caller.subscribed = False
        return {"subscribed": False}, []

    def describe(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("sessions.describe", params, ("key",))
        session = self.world.sessions.get(params.get("key", ""))
        row = payloads.session_row(session, self.world, self.protocol) if session else None
        return {"session": row}, []

    def sessions_usage(self, caller: Caller, params: dict[str, Any]) -> Result:
        allowed: tuple[str, ...] = ("key", "startDate", "endDate", "mode", "utcOffset", "limit")
        allowed += ("includeContextWeight",)
        if self.protocol >= 4:
            allowed += ("agentId", "agentScope", "creatorKey", "range", "groupBy", "timeZone")
        closed("sessions.usage", params, allowed)
        limit = integer("sessions.usage", params, "limit", minimum=1, default=50)
        cached = None
        if self.stale_usage is not None:
            cached, left = self.stale_usage
            self.stale_usage = (cached, left - 1) if left > 1 else None
        return payloads.sessions_usage(self.world, self.protocol, limit, cached), []

    def health(self, caller: Caller, params: dict[str, Any]) -> Result:
        return payloads.health(self.world, self.protocol, rpc=True), []

    def status(self, caller: Caller, params: dict[str, Any]) -> Result:
        return payloads.status(self.world, self.protocol, self.version), []

    def system_presence(self, caller: Caller, params: dict[str, Any]) -> Result:
        return payloads.presence_entries(self.world, self.protocol), []

    def usage_cost(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("usage.cost", params, ("agentScope", "days", "agentId"))
        days = integer("usage.cost", params, "days", minimum=1, default=30)
        return payloads.usage_cost(self.world, days), []

    # --- writes --------------------------------------------------------------------------------

    def chat_send(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("chat.send", params, ("sessionKey", "message", "idempotencyKey", "attachments"))
        key = params.get("sessionKey")
        if not isinstance(key, str) or not key.startswith("agent:"):
            raise invalid_params("chat.send", "at /sessionKey: must be a session key")
        agent_id = key.split(":")[1]
        if agent_id not in self.world.agents:
            raise Refusal("INVALID_REQUEST", f"unknown agent: {agent_id}")
        session = self.world.sessions.get(key) or self.world.add_session(agent_id, key, None)
        happenings = self.world.start_run(session)
        if not happenings:
            raise Refusal("UNAVAILABLE", "session busy", {"reason": "session-busy"})
        return {"runId": happenings[0].data["run"].id, "status": "started"}, happenings

    def chat_abort(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("chat.abort", params, ("sessionKey", "runId"))
        happenings = self.world.abort(str(params.get("runId")))
        return {"ok": True, "aborted": bool(happenings)}, happenings

    def sessions_create(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("sessions.create", params, ("agentId", "key", "label"))
        agent_id, key, label = params.get("agentId"), params.get("key"), params.get("label")
        if agent_id not in self.world.agents or not isinstance(key, str):
            raise invalid_params("sessions.create", "at /agentId: unknown agent")
        if label and any(s.label == label for s in self.world.sessions.values()):
            raise Refusal("INVALID_REQUEST", f"label already in use: {label}")
        session = self.world.add_session(agent_id, key, label if isinstance(label, str) else None)
        answer = {"ok": True, "key": session.key, "sessionId": session.session_id}
        return answer, [Happening("session.created", {"session": session})]

    def sessions_delete(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("sessions.delete", params, ("key",))
        session = self.world.sessions.pop(str(params.get("key")), None)
        happenings = [Happening("session.deleted", {"session": session})] if session else []
        return {"ok": True, "deleted": session is not None}, happenings

    def agents_create(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("agents.create", params, ("name", "workspace", "model", "emoji"))
        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_params("agents.create", "must have required property 'name'")
        model = params.get("model")
        happenings = self.world.add_agent(name, model if isinstance(model, str) else None)
        agent = happenings[0].data["agent"]
        answer = {"ok": True, "agentId": agent.id, "name": agent.name, "workspace": agent.workspace}
        return answer, happenings

    def agents_update(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("agents.update", params, ("agentId", "name", "workspace", "model", "emoji"))
        agent_id = self._known_agent("agents.update", params)
        name, model = params.get("name"), params.get("model")
        happenings = self.world.update_agent(
            agent_id,
            name=name if isinstance(name, str) else None,
            model=model if isinstance(model, str) else None,
        )
        return {"ok": True, "agentId": agent_id}, happenings

    def agents_delete(self, caller: Caller, params: dict[str, Any]) -> Result:
        closed("agents.delete", params, ("agentId", "deleteFiles"))
        agent_id = self._known_agent("agents.delete", params)
        return {"ok": True, "agentId": agent_id}, self.world.remove_agent(agent_id)

    def _known_agent(self, method: str, params: dict[str, Any]) -> str:
        agent_id = params.get("agentId")
        if not isinstance(agent_id, str):
            raise invalid_params(method, "must have required property 'agentId'")
        if agent_id not in self.world.agents:
            raise Refusal("INVALID_REQUEST", f"unknown agent: {agent_id}")
        return agent_id
