"""What a real gateway sends for each happening of the demo world, per protocol. No I/O."""

from __future__ import annotations

from typing import Any

from ocnb.demo_gateway import payloads
from ocnb.demo_gateway.world import Happening, Run, World


def frames_for(happening: Happening, world: World, v: int) -> list[tuple[str, Any]]:
    """The events a real gateway speaking protocol `v` sends for one happening."""
    kind, data = happening.kind, happening.data
    if kind.startswith("run."):
        return _run_frames(kind, data["run"], world, v)
    if kind == "session.created":
        return [
            (
                "sessions.changed",
                payloads.sessions_changed(data["session"], world, v, reason="create"),
            )
        ]
    if kind == "session.deleted":
        return [("sessions.changed", payloads.session_deleted(data["session"], world, v))]
    if kind == "config.changed":
        frames: list[tuple[str, Any]] = [("health", None)]
        if v >= 4:
            path = "~/.openclaw/openclaw.json"
            frames.insert(
                0,
                ("config.changed", {"path": path, "hash": world.config_hash, "ts": world.now}),
            )
        return frames
    if kind == "presence":
        return [("presence", {"presence": payloads.presence_entries(world, v)})]
    if kind == "heartbeat":
        agent = data["agent"]
        return [
            (
                "heartbeat",
                {
                    "ts": world.now,
                    "agentId": agent.id,
                    "status": "ok-empty",
                    "reason": "interval",
                    "preview": "",
                    "durationMs": data["ms"],
                    "sessionKey": f"agent:{agent.id}:main",
                },
            )
        ]
    if kind == "cron":
        return [("cron", _cron_event(data["agent"].id, data["job_id"], world.now))]
    return []


def _run_frames(kind: str, run: Run, world: World, v: int) -> list[tuple[str, Any]]:
    session = run.session
    out: list[tuple[str, Any]] = []

    def agent(stream: str, data: dict[str, Any], **extra: Any) -> None:
        out.append(("agent", payloads.agent_event(run, world, v, stream, data, **extra)))

    def changed(**how: Any) -> None:
        out.append(
            ("sessions.changed", payloads.sessions_changed(session, world, v, run=run, **how))
        )

    if kind == "run.started":
        if v >= 4:
            agent("run_status", {"phase": "preparing_workspace"})
            out.append(("chat", payloads.chat_event(run, v, "status", phase="preparing_workspace")))
            out.append(("task", _task_event(run, "created", "running")))
        out.append(
            (
                "session.message",
                payloads.session_message(session, world, v, run=run, role="user"),
            )
        )
        agent("lifecycle", {"phase": "start", "startedAt": run.started_at})
        if v >= 4:
            changed(reason="agent.run.started")
        changed(phase="start")
    elif kind == "run.model":
        if v >= 4:
            agent(
                "lifecycle",
                {"phase": "model", "provider": run.agent.provider, "model": run.agent.model},
                lane="main",
            )
            changed(phase="model")
        else:
            changed(phase="message")
    elif kind == "run.delta":
        data: dict[str, Any] = {"text": run.text, "delta": run.last_delta}
        if v >= 4:
            data["itemId"] = f"{run.id}:1"
        agent("assistant", data)
        chat: dict[str, Any] = {"message": payloads.assistant_message(run.text, world.now)}
        if v >= 4:
            chat = {"deltaText": run.last_delta, **chat}
        out.append(("chat", payloads.chat_event(run, v, "delta", **chat)))
    elif kind in ("run.end", "run.abort"):
        aborted = kind == "run.abort"
        stop = "aborted" if aborted else "stop"
        if v >= 4 and not aborted:
            agent("usage", {"outputTokens": run.output_tokens})
        end: dict[str, Any] = {
            "phase": "end",
            "startedAt": run.started_at,
            "endedAt": world.now,
        }
        end.update(stopReason=stop, aborted=aborted, livenessState="working", status="done")
        if v >= 4:
            end.update(
                replayInvalid=False,
                executionSettled=True,
                terminalReply={"disposition": "visible", "text": run.text},
                terminalReceipt=_terminal_receipt(run),
            )
        agent("lifecycle", end)
        if aborted:
            out.append(("chat", payloads.chat_event(run, v, "aborted", stopReason="aborted")))
        else:
            final: dict[str, Any] = {"message": payloads.assistant_message(run.text, world.now)}
            if v >= 4:
                final = {"stopReason": "stop", **final}
            out.append(("chat", payloads.chat_event(run, v, "final", **final)))
        out.append(
            (
                "session.message",
                payloads.session_message(session, world, v, run=run, role="assistant"),
            )
        )
        changed(phase="end")
        if v >= 4:
            changed(reason="agent.input.settled")
            out.append(
                ("task", _task_event(run, "updated", "cancelled" if aborted else "succeeded"))
            )
    elif kind == "run.error":
        failure = payloads.error_observation(run)
        detail = {"errorDetail": failure} if v >= 4 else {}
        if v >= 4:
            agent(
                "lifecycle",
                {
                    "phase": "finishing",
                    "error": run.error,
                    "errorObservation": failure,
                    "aborted": False,
                    "livenessState": "blocked",
                    "endedAt": world.now,
                    "stopReason": "error",
                },
            )
            agent(
                "lifecycle",
                {
                    "phase": "fallback_step",
                    "fallbackStepType": "fallback_step",
                    "fallbackStepFromModel": run.agent.model_ref,
                    "fallbackStepFromFailureReason": "auth",
                    "fallbackStepFromFailureDetail": run.error,
                    "fallbackStepChainPosition": 1,
                    "fallbackStepFinalOutcome": "chain_exhausted",
                },
            )
            agent(
                "lifecycle",
                {
                    "phase": "error",
                    "error": run.error,
                    "errorObservation": failure,
                    "aborted": False,
                    "livenessState": "blocked",
                    "startedAt": run.started_at,
                    "endedAt": world.now,
                    "stopReason": "error",
                    "executionSettled": True,
                },
            )
        else:
            agent(
                "lifecycle",
                {
                    "phase": "error",
                    "error": run.error,
                    "livenessState": "blocked",
                    "endedAt": world.now,
                },
            )
        out.append(
            (
                "chat",
                payloads.chat_event(run, v, "error", errorMessage=run.error, **detail),
            )
        )
        if v >= 4:
            changed(phase="error")
            out.append(("task", _task_event(run, "updated", "failed")))
        else:  # v3 records the failure as an assistant message carrying errorMessage
            message = payloads.session_message(session, world, v, run=run, role="assistant")
            out.append(("session.message", message))
    return out


def _terminal_receipt(run: Run) -> dict[str, Any]:
    requested = {"provider": run.agent.provider, "model": run.agent.model}
    return {
        "runId": run.id,
        "sessionId": run.session.session_id,
        "turnId": run.id,
        "requested": requested,
        "effective": {**requested, "responseModel": run.agent.model},
        "rerouted": False,
        "terminalDisposition": "visible",
        "successfulToolNames": [],
    }


def _task_event(run: Run, action: str, status: str) -> dict[str, Any]:
    return {
        "action": action,
        "task": {
            "id": f"task-{run.id[:8]}",
            "status": status,
            "agentId": run.agent.id,
            "sessionKey": run.session.key,
            "runId": run.id,
            "runtime": "cli",
        },
    }


def _cron_event(agent_id: str, job_id: str, now: int) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "action": "updated",
        "nextRunAtMs": now + 3_600_000,
        "job": {
            "id": job_id,
            "declarationKey": f"report:{agent_id}",
            "displayName": f"Hourly report ({agent_id})",
            "agentId": agent_id,
            "name": f"report-{agent_id}",
            "enabled": True,
            "createdAtMs": now - 86_400_000,
            "updatedAtMs": now,
            "schedule": {"kind": "every", "everyMs": 3_600_000, "anchorMs": 0},
            "sessionTarget": "main",
            "wakeMode": "now",
            "delivery": {"mode": "none"},
            "payload": {
                "kind": "agentTurn",
                "message": "Post the hourly report.",
                "toolsAllow": ["read"],
            },
            "scheduledToolPolicy": {"mode": "allowlist", "version": 1},
            "state": {"nextRunAtMs": now + 3_600_000},
        },
    }
