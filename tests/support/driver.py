"""Makes real activity on a gateway through a second, write-scoped connection."""

from __future__ import annotations

import uuid
from typing import Any

from ocnb import DeviceIdentity, DeviceTokenStore, GatewayClient
from support.helpers import wait_for

WRITE_SCOPES = ("operator.read", "operator.write", "operator.admin")


class Driver:
    """A write-scoped client that starts runs, aborts them and manages sessions and agents."""

    def __init__(
        self,
        url: str,
        token: str,
        device: DeviceIdentity | None = None,
        device_tokens: DeviceTokenStore | None = None,
    ) -> None:
        self.client = GatewayClient(
            url,
            token,
            scopes=WRITE_SCOPES,
            subscribe_sessions=False,
            device=device or True,
            device_tokens=device_tokens,
        )

    def __enter__(self) -> Driver:
        self.client.start().wait_until_live(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.call(method, params or {}, timeout=60)

    def run(self, session_key: str, message: str = "status?") -> str:
        """Start a run with `chat.send` (creating the session); return its run id."""
        answer = self.call(
            "chat.send",
            {"sessionKey": session_key, "message": message, "idempotencyKey": str(uuid.uuid4())},
        )
        run_id: str = answer["runId"]
        return run_id

    def abort(self, session_key: str, run_id: str) -> Any:
        return self.call("chat.abort", {"sessionKey": session_key, "runId": run_id})

    def create_session(self, agent_id: str, key: str, label: str | None = None) -> Any:
        params: dict[str, Any] = {"agentId": agent_id, "key": key}
        if label:
            params["label"] = label
        return self.call("sessions.create", params)

    def delete_session(self, key: str) -> Any:
        return self.call("sessions.delete", {"key": key})

    def create_agent(self, name: str, model: str | None = None) -> str:
        """`agents.create` (v4, admin); returns the new agent's id once `agents.list` has it
        (a real gateway applies the config change a moment later)."""
        params = {"name": name} if model is None else {"name": name, "model": model}
        agent_id: str = self.call("agents.create", params)["agentId"]
        wait_for(lambda: agent_id in self.agent_ids(), 30, f"agent {agent_id} to appear")
        return agent_id

    def agent_ids(self) -> list[str]:
        return [agent["id"] for agent in self.call("agents.list")["agents"]]

    def update_agent(self, agent_id: str, **fields: Any) -> Any:
        return self.call("agents.update", {"agentId": agent_id, **fields})

    def delete_agent(self, agent_id: str) -> Any:
        return self.call("agents.delete", {"agentId": agent_id})
