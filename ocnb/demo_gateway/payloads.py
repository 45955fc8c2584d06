"""Frames as real gateways shape them (v4 = 2026.9.6, v3 = 2026.5.7), built from the demo world.

Key sets follow frames recorded from real gateways (`tests/fixtures/real-shapes-*.json`); the
demo-drift test fails when they part ways.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ocnb.demo_gateway.world import Agent, Presence, Run, Session, World

THINKING_LEVELS = [{"id": "off", "label": "off"}, {"id": "low", "label": "low"}]
THINKING = {
    "thinkingLevels": THINKING_LEVELS,
    "thinkingOptions": [level["id"] for level in THINKING_LEVELS],
    "thinkingDefault": "off",
}
PARTICIPANT = {
    "identity": {
        "type": "observation",
        "pluginId": None,
        "accountId": None,
        "senderKind": "unknown",
        "id": "cli",
    }
}
HEARTBEAT_PROMPT = "Follow the heartbeat monitor scratch context when provided."
# Keys of the top level of v4 session events that are not row fields.
EVENT_EXTRAS = (
    "agentStatus", "archiveReason", "archivedAt", "archivedBy", "autoLabel", "boardPresentation",
    "category", "channelAvatarUrl", "color", "controlOwnerSessionKey", "createdActor", "goal",
    "icon", "markedUnreadAt", "observerDigest", "owner", "permissionMode", "pinnedAt",
    "providerReview", "restartRecoveryStatus", "swarm", "thinkingLevel", "toolOverrides",
)  # fmt: skip
# Row fields only `sessions.list` rows carry, not the top level of events.
LIST_ONLY = frozenset(
    {
        "classification", "effectiveQueueMode", "expandedParticipants", "isBackground",
        "isMain", "key", "lastInteractionAt", "lastMessagePreview", "placement", "snapshotAt",
        "thinkingDefault", "thinkingLevels", "thinkingOptions",
    }
)  # fmt: skip
RUNTIME_KEYS = frozenset(
    {"agentRuntime", "model", "modelOverrideSource", "modelProvider", "runtimeSelectionLocked"}
)
NULLABLE_AT_TOP = (
    "displayName", "label", "lastRunError", "lastRunId", "endedAt", "runtimeMs",
    "contextBudgetStatus", "activeModel", "activeModelProvider",
)  # fmt: skip


def _agent_runtime(protocol: int, *, session: bool) -> dict[str, Any]:
    if protocol < 4:
        return {"id": "pi", "source": "implicit"}
    runtime: dict[str, Any] = {
        "id": "openclaw" if session else "auto",
        "cloudPlacementSupported": session,
        "devicePlacementSupported": session,
        "source": "implicit",
    }
    if session:
        runtime["cloudPlacementExecutionMode"] = "worker-turn"
        runtime["devicePlacement"] = {"requiredNodeCommands": [], "consumesWorkerSlot": True}
    return runtime


# --- agents ------------------------------------------------------------------------------------


def agent_entry(agent: Agent, protocol: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": agent.id,
        "name": agent.name,
        "identity": {"name": agent.name, "emoji": agent.emoji},
        "workspace": agent.workspace,
    }
    if protocol >= 4:
        entry["workspaceGit"] = False
    entry["agentRuntime"] = _agent_runtime(protocol, session=False)
    if protocol >= 4:
        entry.update(THINKING)
    entry["model"] = {"primary": agent.model_ref}
    if protocol >= 4:
        entry["defaultPermissionMode"] = "full"
    return entry


def agents_list(world: World, protocol: int) -> dict[str, Any]:
    default_id = next(iter(world.agents), "main")
    payload: dict[str, Any] = {"defaultId": default_id}
    if protocol >= 4:
        payload.update(ownership="explicit", selectionRequired=len(world.agents) > 1)
    payload.update(mainKey="main", scope="per-sender")
    payload["agents"] = [agent_entry(agent, protocol) for agent in world.agents.values()]
    return payload


# --- sessions ----------------------------------------------------------------------------------


def session_row(
    session: Session, world: World, protocol: int, *, in_event: bool = False
) -> dict[str, Any]:
    """A session as `sessions.list` lists it, or as an event carries it under `session`."""
    if protocol < 4:
        return _session_row_v3(session, partial=in_event)
    running = session.active_run_id is not None
    row: dict[str, Any] = {
        "key": session.key,
        "visibility": "shared",
        "permissionModePending": False,
        "createdVia": "operator",
        "participants": [PARTICIPANT],
        "expandedParticipants": [PARTICIPANT],
        "participantCount": 1,
        "createdAt": session.created_at,
        "kind": "direct",
        "classification": "direct",
        "agentId": session.agent_id,
        "isMain": session.key.endswith(":main"),
        "isBackground": False,
        "chatType": "direct",
        "updatedAt": session.updated_at,
        "archived": False,
        "pinned": False,
        "unread": False,
        "lastInteractionAt": session.updated_at,
        "sessionId": session.session_id,
        "systemSent": True,
        "abortedLastRun": session.aborted_last_run,
        **THINKING,
        "effectiveFastMode": False,
        "effectiveFastModeSource": "default",
        "fastAutoOnSeconds": 60,
        "activitySummary": {"state": "running" if running else "idle", "canEnsure": True},
    }
    if session.label:
        row.update(label=session.label, displayName=session.label, derivedTitle=session.label)
    if session.parent_key:
        row.update(parentSessionKey=session.parent_key, spawnDepth=1)
    if session.last_preview:
        row["lastMessagePreview"] = session.last_preview
    if session.input_tokens is not None:
        row.update(
            inputTokens=session.input_tokens,
            outputTokens=session.output_tokens,
            estimatedCostUsd=session.cost_usd,
        )
    row.update(totalTokens=session.total_tokens or 0, totalTokensFresh=True)
    if session.status is not None:
        row["status"] = session.status
        row["startedAt"] = session.started_at
    if session.ended_at is not None and session.started_at is not None:
        row.update(endedAt=session.ended_at, runtimeMs=session.ended_at - session.started_at)
    if session.last_run_error:
        row["lastRunError"] = session.last_run_error
    if session.run_id:
        row["lastRunId"] = session.run_id
    row.update(
        effectiveResponseUsage="off",
        effectiveQueueMode="steer",
        modelProvider=session.provider,
        model=session.model,
        modelOverrideSource=None,
        runtimeSelectionLocked=False,
        agentRuntime=_agent_runtime(protocol, session=True),
        contextTokens=128_000,
    )
    if running:
        row.update(activeModel=session.model, activeModelProvider=session.provider)
    if session.input_tokens is not None:
        row["contextBudgetStatus"] = _context_budget(session)
    row.update(
        snapshotAt=world.now,
        placement={
            "state": "local",
            "generation": 0,
            "createdAtMs": session.created_at,
            "updatedAtMs": session.updated_at,
            "stateChangedAtMs": session.created_at,
        },
        hasActiveRun=running,
        activeRunIds=[session.active_run_id] if running else [],
        sharingRole="admin",
    )
    return row


def _context_budget(session: Session) -> dict[str, Any]:
    prompt = session.input_tokens or 0
    return {
        "schemaVersion": 1,
        "source": "pre-prompt-estimate",
        "updatedAt": session.updated_at,
        "provider": session.provider,
        "model": session.model,
        "route": "fits",
        "shouldCompact": False,
        "estimatedPromptTokens": prompt,
        "contextTokenBudget": 128_000,
        "promptBudgetBeforeReserve": 108_000,
        "reserveTokens": 20_000,
        "effectiveReserveTokens": 20_000,
        "remainingPromptBudgetTokens": max(0, 108_000 - prompt),
        "overflowTokens": 0,
        "toolResultReducibleChars": 0,
        "messageCount": session.message_seq,
        "unwindowedMessageCount": session.message_seq,
        "sessionId": session.session_id,
    }


def _session_row_v3(session: Session, *, partial: bool) -> dict[str, Any]:
    """v3 rows; `partial` ones (in events) lack the input/output split, as v3's do."""
    row: dict[str, Any] = {
        "key": session.key,
        "kind": "direct",
        "chatType": "direct",
        "origin": {"provider": "webchat", "surface": "webchat", "chatType": "direct"},
        "updatedAt": session.updated_at,
        "sessionId": session.session_id,
        "systemSent": True,
        "abortedLastRun": session.aborted_last_run,
        **THINKING,
    }
    if session.input_tokens is not None:
        if not partial:
            row.update(inputTokens=session.input_tokens, outputTokens=session.output_tokens)
        row.update(totalTokens=session.total_tokens, estimatedCostUsd=session.cost_usd)
    row["totalTokensFresh"] = session.input_tokens is not None
    if session.label:
        row.update(label=session.label, displayName=session.label)
    if session.status is not None:
        row.update(status=session.status, startedAt=session.started_at)
    if session.ended_at is not None and session.started_at is not None:
        row.update(endedAt=session.ended_at, runtimeMs=session.ended_at - session.started_at)
    row.update(
        modelProvider=session.provider,
        model=session.model,
        agentRuntime=_agent_runtime(3, session=True),
        contextTokens=128_000,
        deliveryContext={"channel": "webchat"},
        lastChannel="webchat",
        hasActiveRun=session.active_run_id is not None,
    )
    return row


def sessions_list(
    world: World, protocol: int, rows: list[dict[str, Any]], *, total: int, offset: int, limit: int
) -> dict[str, Any]:
    """The `sessions.list` answer around one page of `rows`."""
    defaults: dict[str, Any] = {"modelProvider": "anthropic", "model": "claude-sonnet-5"}
    defaults["contextTokens"] = 128_000
    if protocol >= 4:
        defaults["agentRuntime"] = _agent_runtime(4, session=False)
    defaults.update(THINKING)
    if protocol >= 4:
        defaults["modelSelectionTarget"] = "session"
    has_more = offset + len(rows) < total
    payload: dict[str, Any] = {
        "ts": world.now,
        "path": "(multiple)",
        "count": len(rows),
        "totalCount": total,
        "limitApplied": limit,
    }
    if protocol >= 4:
        payload["nextOffset"] = offset + len(rows) if has_more else None
    payload["hasMore"] = has_more
    if protocol >= 4:
        payload["owners"] = []
    payload.update(defaults=defaults, sessions=rows)
    return payload


def session_projection(
    session: Session, world: World, protocol: int, *, phase: str | None = None
) -> dict[str, Any]:
    """The top level of a v4 session event: row fields and nulls for what is unset."""
    row = session_row(session, world, protocol)
    if protocol < 4:
        return {
            k: v
            for k, v in row.items()
            if k
            not in ("key", "thinkingLevels", "thinkingOptions", "thinkingDefault", "hasActiveRun")
        }
    projection: dict[str, Any] = dict.fromkeys(EVENT_EXTRAS)
    projection["ancestorSessions"] = []
    projection["hasAutomation"] = False
    projection.update(dict.fromkeys(NULLABLE_AT_TOP))
    projection["activeRunIds"] = row["activeRunIds"]
    skip = LIST_ONLY | (RUNTIME_KEYS if phase in ("start", "end", "error") else frozenset())
    projection.update({k: v for k, v in row.items() if k not in skip})
    return projection


def sessions_changed(
    session: Session,
    world: World,
    protocol: int,
    *,
    reason: str | None = None,
    phase: str | None = None,
    run: Run | None = None,
) -> dict[str, Any]:
    """`sessions.changed` with the full row: a `phase` of a run, or another `reason`."""
    payload: dict[str, Any] = {"sessionKey": session.key}
    if protocol < 4 and reason == "create":
        return _created_v3(session, world)
    if protocol >= 4:
        payload["agentId"] = session.agent_id
    if phase == "message":
        payload.update(phase=phase, messageId=session.last_message_id)
        payload["messageSeq"] = session.message_seq
    elif phase is not None:
        payload["phase"] = phase
        if run is not None:
            payload["runId"] = run.id
    else:
        payload["reason"] = reason
    payload["ts"] = world.now
    if protocol >= 4 and reason is not None and reason != "participants":
        payload["placementMove"] = None
    payload.update(session_projection(session, world, protocol, phase=phase))
    if reason == "create":
        payload.pop("ancestorSessions", None)
    payload["session"] = session_row(session, world, protocol, in_event=True)
    return payload


def _created_v3(session: Session, world: World) -> dict[str, Any]:
    """v3 announces a new session with a few fields and no row."""
    return {
        "sessionKey": session.key,
        "reason": "create",
        "ts": world.now,
        "sessionId": session.session_id,
        "kind": "direct",
        "label": session.label,
        "displayName": session.label,
        "model": session.model,
        "modelProvider": session.provider,
        "contextTokens": 128_000,
        "totalTokensFresh": False,
        "updatedAt": session.updated_at,
        "hasActiveRun": False,
    }


def session_deleted(session: Session, world: World, protocol: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"sessionKey": session.key}
    if protocol >= 4:
        payload.update(agentId=session.agent_id, sessionId=session.session_id)
    payload.update(reason="delete", ts=world.now)
    return payload


def session_message(
    session: Session, world: World, protocol: int, *, run: Run, role: str
) -> dict[str, Any]:
    """`session.message` for the user's prompt or the assistant's reply (with its usage)."""
    session.message_seq += 1
    message_id = world.new_id() if protocol >= 4 else world.new_id()[:8]
    session.last_message_id = message_id
    seq = session.message_seq
    meta: dict[str, Any] = {"id": message_id, "seq": seq}
    message: dict[str, Any] = {"role": role}
    if role == "user":
        message["content"] = "status?" if protocol >= 4 else [{"type": "text", "text": "status?"}]
        message["timestamp"] = run.started_at
        if protocol >= 4:
            message["idempotencyKey"] = f"{run.id}:user"
            meta.update(
                senderIsOwner=True,
                transport={"clients": [{"id": "cli", "mode": "cli"}]},
                idempotencyKey=f"{run.id}:user",
                recordTimestampMs=world.now,
                transcriptPosition={"rawSeq": seq, "source": session.session_id},
            )
    else:
        text = run.text or (run.reply if run.outcome == "done" else "")
        message["content"] = [{"type": "text", "text": text}] if text else []
        message.update(api="openai-completions", provider=run.agent.provider)
        message.update(model=run.agent.model, responseId=f"chatcmpl-{run.id[:12]}")
        message["usage"] = _message_usage(run, protocol)
        message["stopReason"] = {"done": "stop", "killed": "aborted"}.get(run.outcome, "error")
        message["timestamp"] = world.now
        if protocol >= 4:
            message["idempotencyKey"] = f"{run.id}:assistant"
            meta.update(
                idempotencyKey=f"{run.id}:assistant",
                recordTimestampMs=world.now,
                runId=run.id,
                transcriptPosition={"rawSeq": seq, "source": session.session_id},
            )
        elif run.error:
            message["errorMessage"] = run.error
    message["__openclaw"] = meta
    payload: dict[str, Any] = {"sessionKey": session.key}
    if protocol >= 4:
        if role == "user":
            payload["senderIsOwner"] = True
        payload["agentId"] = session.agent_id
    payload.update(message=message, messageId=message_id, messageSeq=seq)
    if protocol >= 4 and role == "assistant":
        payload["runId"] = run.id
    payload.update(session_projection(session, world, protocol))
    payload["session"] = session_row(session, world, protocol, in_event=True)
    return payload


def _message_usage(run: Run, protocol: int) -> dict[str, Any]:
    cost = run.cost_usd
    usage: dict[str, Any] = {
        "input": run.input_tokens,
        "output": run.output_tokens,
        "cacheRead": 0,
        "cacheWrite": 0,
        "totalTokens": run.input_tokens + run.output_tokens,
    }
    if protocol >= 4:
        in_share = cost * run.input_tokens / max(1, run.input_tokens + run.output_tokens * 5)
        usage["cost"] = {
            "input": round(in_share, 6),
            "output": round(cost - in_share, 6),
            "cacheRead": 0,
            "cacheWrite": 0,
            "total": cost,
        }
    else:
        usage["cost"] = {"total": cost}
    return usage


# --- runs: agent and chat events ------------------------------------------------------------


def agent_event(
    run: Run, world: World, protocol: int, stream: str, data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = {"runId": run.id, "stream": stream, "data": data}
    payload["sessionKey"] = run.session.key
    if protocol >= 4:
        if stream == "lifecycle":
            payload["sessionId"] = run.session.session_id
        payload["agentId"] = run.agent.id
    payload.update(extra)
    payload["seq"] = run.next_seq()
    payload["ts"] = world.now
    if protocol >= 4:
        payload["isHeartbeat"] = False
    return payload


def chat_event(run: Run, protocol: int, state: str, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"runId": run.id, "sessionKey": run.session.key}
    if protocol >= 4:
        payload["agentId"] = run.agent.id
    payload["seq"] = run.seq
    payload["state"] = state
    payload.update(fields)
    return payload


def assistant_message(text: str, ts: int) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": ts}


def error_observation(run: Run) -> dict[str, Any]:
    return {
        "provider": run.agent.provider,
        "model": run.agent.model,
        "failoverReason": "auth",
        "providerRuntimeFailureKind": "auth_invalid_token",
    }


# --- gateway-wide state ----------------------------------------------------------------------


def presence_entries(world: World, protocol: int) -> list[dict[str, Any]]:
    return [_presence(p, protocol) for p in world.presence.values()]


def _presence(entry: Presence, protocol: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "host": entry.host,
        "ip": entry.ip,
        "version": "2026.9.6" if protocol >= 4 else "2026.5.7",
        "platform": entry.platform,
        "deviceFamily": entry.device_family,
        "mode": entry.mode,
        "reason": "connect",
        "text": f"{entry.host} connected",
        "ts": entry.ts,
    }
    if protocol >= 4:
        item["instanceId"] = entry.instance_id
    else:
        item["modelIdentifier"] = entry.device_family
    return item


def health(world: World, protocol: int, *, rpc: bool = False) -> dict[str, Any]:
    counts: dict[str, list[Session]] = {agent_id: [] for agent_id in world.agents}
    for session in world.sessions.values():
        counts.setdefault(session.agent_id, []).append(session)
    default_id = next(iter(world.agents), "main")

    def sessions_summary(sessions: list[Session]) -> dict[str, Any]:
        recent = sorted(sessions, key=lambda s: s.updated_at, reverse=True)[:3]
        return {
            "path": "~/.openclaw/agents/sessions.sqlite",
            "count": len(sessions),
            "recent": [
                {"key": s.key, "updatedAt": s.updated_at, "age": world.now - s.updated_at}
                for s in recent
            ],
        }

    event_loop: dict[str, Any] = {
        "degraded": False,
        "reasons": ["none"],
        "intervalMs": 1000,
        "delayP99Ms": 12.5,
        "delayMaxMs": 20.1,
        "utilization": 0.02,
        "cpuCoreRatio": 0.03,
    }
    if protocol >= 4:
        event_loop["degradedSinceMs"] = 0
        event_loop["cpuBreakdown"] = {
            "mainThreadCoreRatio": 0.02,
            "hostUtilization": 0.2,
            "hostCpuCount": 8,
        }

    payload: dict[str, Any] = {"ok": True, "ts": world.now, "durationMs": 4}
    if protocol < 4:
        payload["eventLoop"] = event_loop
    payload["plugins"] = {"loaded": ["browser", "memory-core"], "errors": []}
    if protocol >= 4:
        payload["plugins"]["unavailable"] = []
        payload["configReload"] = {"hotReloadStatus": "active"}
    payload.update(channels={}, channelOrder=[], channelLabels={}, heartbeatSeconds=0)
    if protocol < 4:
        payload["defaultAgentId"] = default_id
    payload["agents"] = [
        {
            "agentId": agent.id,
            "name": agent.name,
            "isDefault": agent.id == default_id,
            "heartbeat": {
                "enabled": False,
                "every": "disabled",
                "everyMs": None,
                "prompt": HEARTBEAT_PROMPT,
                "target": "owner",
                "ackMaxChars": 300,
            },
            "sessions": sessions_summary(counts.get(agent.id, [])),
        }
        for agent in world.agents.values()
    ]
    payload["sessions"] = sessions_summary(list(world.sessions.values()))
    if protocol >= 4:
        payload["eventLoop"] = event_loop
        if rpc:
            payload["modelRuntime"] = {"degraded": False, "pendingAgents": []}
    return payload


def hello_ok(
    world: World,
    protocol: int,
    *,
    conn_id: str,
    scopes: list[str],
    methods: list[str],
    events: list[str],
    tick_interval_ms: int,
    device_token: str | None,
    boot_id: str,
) -> dict[str, Any]:
    version = "2026.9.6" if protocol >= 4 else "2026.5.7"
    server: dict[str, Any] = {"version": version}
    if protocol >= 4:
        server.update(buildId=f"{version}-demo", bootId=boot_id, controlUiBuildSource="bundled")
    server["connId"] = conn_id
    features: dict[str, Any] = {"methods": methods, "events": events}
    if protocol >= 4:
        features["capabilities"] = ["model-catalog-snapshot"]
    default_id = next(iter(world.agents), "main")
    snapshot: dict[str, Any] = {
        "presence": presence_entries(world, protocol),
        "health": health(world, protocol),
        "stateVersion": {"presence": world.presence_version, "health": world.health_version},
        "uptimeMs": world.now - world.started,
    }
    defaults: dict[str, Any] = {
        "defaultAgentId": default_id,
        "mainKey": "main",
        "mainSessionKey": f"agent:{default_id}:main",
        "scope": "per-sender",
    }
    if protocol >= 4:
        defaults.update(modelConfigured=True, ownership="explicit", selectionRequired=True)
        snapshot.update(appliedConfigHash=world.config_hash, suspension={"phase": "none"})
    else:
        snapshot["updateAvailable"] = {
            "currentVersion": version,
            "latestVersion": "2026.9.6",
            "channel": "stable",
        }
    snapshot["sessionDefaults"] = defaults
    auth: dict[str, Any] = {"role": "operator", "scopes": scopes}
    if device_token is not None:
        auth.update(deviceToken=device_token, issuedAtMs=world.now)
        if protocol >= 4:
            auth.update(method="token", recoveryMigrationAllowed=False, recoveryScope="none")
    policy: dict[str, Any] = {
        "maxPayload": 26_214_400,
        "maxBufferedBytes": 52_428_800,
        "tickIntervalMs": tick_interval_ms,
    }
    if protocol >= 4:
        policy.update(
            attachments={"maxBytes": 20_971_520, "maxImageBytes": 6_291_456},
            allowedSessionVisibilities=["shared", "private"],
            hasMultipleSessionSharingIdentities=False,
        )
    payload: dict[str, Any] = {
        "type": "hello-ok",
        "protocol": protocol,
        "server": server,
        "features": features,
        "snapshot": snapshot,
        "auth": auth,
        "policy": policy,
    }
    if protocol >= 4:
        payload["pluginSurfaceUrls"] = {"canvas": "http://127.0.0.1/__openclaw__/canvas"}
        payload["controlUiLinkReaders"] = [
            {
                "id": "github",
                "pluginId": "github",
                "label": "GitHub",
                "icon": "github",
                "linkReader": {
                    "hosts": ["github.com"],
                    "pathPattern": "/:owner/:repo",
                    "previewMethod": "github.preview",
                    "detailMethod": "github.detail",
                    "imageMethod": "github.image",
                },
            }
        ]
        payload["controlUiWidgetKinds"] = [
            {"kind": "chart", "label": "Chart", "pluginId": "canvas"}
        ]
    else:
        payload["canvasHostUrl"] = "http://127.0.0.1/__openclaw__/canvas"
    return payload


def usage_totals(sessions: list[Session]) -> dict[str, Any]:
    tokens_in = sum(s.lifetime_input for s in sessions)
    tokens_out = sum(s.lifetime_output for s in sessions)
    cost = round(sum(s.lifetime_cost for s in sessions), 6)
    return {
        "input": tokens_in,
        "output": tokens_out,
        "cacheRead": 0,
        "cacheWrite": 0,
        "totalTokens": tokens_in + tokens_out,
        "totalCost": cost,
        "inputCost": 0.0,
        "outputCost": cost,
        "cacheReadCost": 0.0,
        "cacheWriteCost": 0.0,
        "missingCostEntries": 0,
    }


def _cache_status(world: World, cached: list[Session] | None = None) -> dict[str, Any]:
    """Fresh, or `refreshing` while answers come from `cached` (the sessions changed since
    then are the files pending)."""
    if cached is None:
        return {
            "status": "fresh",
            "cachedFiles": 1,
            "pendingFiles": 0,
            "staleFiles": 0,
            "refreshedAt": world.now,
        }
    seen = {s.key: s.updated_at for s in cached}
    pending = sum(1 for s in world.sessions.values() if seen.get(s.key) != s.updated_at)
    return {
        "status": "refreshing",
        "cachedFiles": len(cached),
        "pendingFiles": pending,
        "staleFiles": pending,
        "refreshedAt": max(seen.values(), default=world.now),
    }


def usage_cost(world: World, days: int) -> dict[str, Any]:
    totals = usage_totals(list(world.sessions.values()))
    today = dt.datetime.fromtimestamp(world.now / 1000, dt.UTC).date().isoformat()
    return {
        "updatedAt": world.now,
        "days": days,
        "cacheStatus": _cache_status(world),
        "daily": [{"date": today, **totals}],
        "totals": totals,
    }


def sessions_usage(
    world: World, protocol: int, limit: int, cached: list[Session] | None = None
) -> dict[str, Any]:
    """Lifetime tokens and cost per session (the `limit` most recently updated, as the real
    gateway lists them), with totals and per-agent aggregates over all sessions. From `cached`
    sessions (copies from an earlier moment), it is the answer of a usage cache still being
    refreshed, as a real gateway gives right after a restart."""
    today = dt.datetime.fromtimestamp(world.now / 1000, dt.UTC).date().isoformat()
    listed = world.sessions.values() if cached is None else cached
    sessions = sorted(listed, key=lambda s: s.updated_at, reverse=True)
    by_agent: dict[str, list[Session]] = {}
    for session in sessions:
        by_agent.setdefault(session.agent_id, []).append(session)
    rows = []
    for session in sessions[:limit]:
        row: dict[str, Any] = {
            "key": session.key,
            "sessionId": session.session_id,
            "agentId": session.agent_id,
            "chatType": "direct",
            "modelProvider": session.provider,
            "model": session.model,
            "updatedAt": session.updated_at,
            "usage": {"sessionId": session.session_id, **usage_totals([session])},
        }
        if protocol >= 4:
            row.update(scope="agent", creatorKey="operator", hasContextWeight=False)
        rows.append(row)
    return {
        "updatedAt": world.now,
        "startDate": today,
        "endDate": today,
        "sessions": rows,
        "totals": usage_totals(sessions),
        "aggregates": {
            "byAgent": [
                {"agentId": agent_id, "totals": usage_totals(group)}
                for agent_id, group in by_agent.items()
            ],
            "messages": {
                "total": sum(s.message_seq for s in sessions),
                "user": sum(s.message_seq for s in sessions) // 2,
                "assistant": sum(s.message_seq for s in sessions) // 2,
                "toolCalls": 0,
                "toolResults": 0,
                "errors": sum(1 for s in sessions if s.last_run_error),
            },
        },
        "cacheStatus": _cache_status(world, cached),
    }


def status(world: World, protocol: int, runtime_version: str) -> dict[str, Any]:
    """A trimmed `status`: the parts a fleet monitor reads (sessions, heartbeat, tasks)."""
    counts: dict[str, int] = {}
    for session in world.sessions.values():
        counts[session.agent_id] = counts.get(session.agent_id, 0) + 1
    default_id = next(iter(world.agents), "main")
    return {
        "runtimeVersion": runtime_version,
        "heartbeat": {
            "defaultAgentId": default_id,
            "agents": [
                {"agentId": a, "enabled": False, "every": "disabled", "everyMs": None}
                for a in world.agents
            ],
        },
        "channelSummary": [],
        "queuedSystemEvents": [],
        "sessions": {
            "paths": [],
            "count": len(world.sessions),
            "defaults": {"model": None, "contextTokens": None},
            "recent": [],
            "byAgent": [
                {"agentId": a, "path": "~/.openclaw", "count": counts.get(a, 0), "recent": []}
                for a in world.agents
            ],
        },
        "tasks": {"total": 0, "active": len(world.runs), "terminal": 0, "failures": 0},
    }


def slim_sessions(world: World, limit: Any) -> dict[str, Any]:
    """The `sessions_list` tool's details over HTTP: slim rows, newest first, capped."""
    cap = limit if isinstance(limit, int) and limit > 0 else 100
    ordered = sorted(world.sessions.values(), key=lambda s: s.updated_at, reverse=True)
    rows = [
        {
            "key": s.key,
            "sessionId": s.session_id,
            "agentId": s.agent_id,
            "kind": "other",
            "channel": "unknown",
            "archived": False,
            "pinned": False,
            "updatedAt": s.updated_at,
            "model": s.model,
            "contextTokens": 128_000,
            "totalTokens": s.total_tokens or 0,
            "status": "running" if s.active_run_id else s.status,
            "abortedLastRun": s.aborted_last_run,
        }
        for s in ordered[:cap]
    ]
    return {
        "count": len(rows),
        "sessions": rows,
        "hasMore": len(ordered) > cap,
        "limitApplied": cap,
    }


def requester_agents(world: World, agent_id: str) -> dict[str, Any]:
    """The `agents_list` tool's details: only the agents the requester may target (itself)."""
    agent = world.agents[agent_id]
    return {
        "requester": agent_id,
        "allowAny": False,
        "agents": [
            {
                "id": agent.id,
                "name": agent.name,
                "configured": True,
                "model": agent.model_ref,
                "agentRuntime": {"id": "auto", "source": "implicit"},
            }
        ],
    }
