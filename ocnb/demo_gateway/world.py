"""The demo fleet: agents, sessions and runs, advanced by a seeded scenario. No I/O.

`World.advance(ms)` moves scenario time forward and returns what happened as `Happening`s;
`ocnb.demo_gateway.payloads` turns them into the frames a real gateway would send. The same seed and
the same sequence of `advance` calls give the same happenings, ids included.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

AGENT_NAMES = (
    ("atlas", "Atlas", "🗺️"), ("beacon", "Beacon", "🔦"), ("cipher", "Cipher", "🔐"),
    ("drift", "Drift", "🌊"), ("ember", "Ember", "🔥"), ("flux", "Flux", "⚡"),
    ("grove", "Grove", "🌳"), ("harbor", "Harbor", "⚓"), ("iris", "Iris", "🌸"),
    ("juno", "Juno", "🪐"), ("kite", "Kite", "🪁"), ("lumen", "Lumen", "💡"),
    ("mosaic", "Mosaic", "🧩"), ("nova", "Nova", "🌟"), ("onyx", "Onyx", "🖤"),
    ("pilot", "Pilot", "🧭"), ("quill", "Quill", "🪶"), ("rook", "Rook", "♜"),
    ("sage", "Sage", "🌿"), ("tidal", "Tidal", "🌙"), ("umbra", "Umbra", "🌑"),
    ("vega", "Vega", "✨"), ("wren", "Wren", "🐦"), ("zephyr", "Zephyr", "🍃"),
)  # fmt: skip
# (provider, model, USD per 1M input tokens, USD per 1M output tokens)
MODELS = (
    ("anthropic", "claude-sonnet-5", 3.0, 15.0),
    ("openai", "gpt-6-astra", 2.5, 10.0),
    ("google", "gemini-3-pro", 1.25, 10.0),
    ("anthropic", "claude-haiku-5", 0.8, 4.0),
    ("ollama", "llama-4-70b", 0.0, 0.0),
)
SESSION_TOPICS = (
    "main", "triage", "billing-sync", "release-notes", "oncall", "inbox", "research",
    "deploy-watch", "standup", "support-queue", "metrics", "backlog", "code-review",
)  # fmt: skip
REPLIES = (
    "All checks passed; the nightly build is green and artifacts are published.",
    "I summarised the twelve new tickets and flagged two as urgent for the on-call team.",
    "The deploy finished in four minutes; error rates stayed flat across every region.",
    "Three invoices did not match the ledger; I drafted corrections for review.",
    "The research brief is ready: five sources, two open questions, one recommendation.",
    "Nothing needs attention right now. I will look again at the next heartbeat.",
)
FAILURES = (
    "Authentication failed (provider returned HTTP 401). Re-authenticate this provider.",
    "Model request timed out after 120 s.",
    "Rate limited by provider (HTTP 429); retry budget exhausted.",
    "Tool 'shell' exited with status 1: permission denied.",
)
PRESENCE_HOSTS = ("ops-laptop", "build-01", "mac-studio", "pixel-9", "ipad-pro")

Outcome = Literal["done", "failed", "killed"]


@dataclass
class Agent:
    id: str
    name: str
    emoji: str
    provider: str
    model: str
    workspace: str

    @property
    def model_ref(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass
class Session:
    key: str
    agent_id: str
    session_id: str
    created_at: int
    updated_at: int
    provider: str
    model: str
    label: str | None = None
    parent_key: str | None = None
    status: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    run_id: str | None = None
    active_run_id: str | None = None
    last_run_error: str | None = None
    aborted_last_run: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    last_preview: str | None = None
    message_seq: int = 0
    last_message_id: str | None = None
    lifetime_input: int = 0
    lifetime_output: int = 0
    lifetime_cost: float = 0.0

    @property
    def total_tokens(self) -> int | None:
        return self.input_tokens


@dataclass
class Run:
    id: str
    session: Session
    agent: Agent
    outcome: Outcome
    reply: str
    error: str | None
    input_tokens: int
    output_tokens: int
    started_at: int = 0
    seq: int = 0
    text: str = ""
    last_delta: str = ""
    steps: list[tuple[int, str]] = field(default_factory=list)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def cost_usd(self) -> float:
        _, _, per_input, per_output = _model_prices(self.agent.provider, self.agent.model)
        return round((self.input_tokens * per_input + self.output_tokens * per_output) / 1e6, 6)


@dataclass
class Presence:
    instance_id: str
    host: str
    ip: str
    platform: str
    device_family: str
    mode: str
    ts: int


@dataclass(frozen=True)
class Happening:
    """Something the gateway reports: `kind` names it, `data` holds the objects involved."""

    kind: str
    data: dict[str, Any]


def _model_prices(provider: str, model: str) -> tuple[str, str, float, float]:
    for entry in MODELS:
        if entry[0] == provider and entry[1] == model:
            return entry
    return (provider, model, 0.0, 0.0)


class World:
    """A seeded fleet and its activity. `advance()` is the only thing that moves time."""

    def __init__(
        self,
        *,
        seed: int = 0,
        agents: int = 8,
        sessions: int = 60,
        start_ms: int,
        run_rate: float = 0.05,
        churn: bool = True,
    ) -> None:
        """`run_rate` is the chance per agent and scenario second that an idle agent starts a run;
        `churn` lets sessions, agents and presence come and go."""
        self.rng = random.Random(seed)  # noqa: S311 - a scenario, not cryptography
        self.now = start_ms
        self.started = start_ms
        self.run_rate = run_rate
        self.churn = churn
        self.agents: dict[str, Agent] = {}
        self.sessions: dict[str, Session] = {}
        self.runs: dict[str, Run] = {}
        self.presence: dict[str, Presence] = {}
        self.presence_version = 1
        self.health_version = 1
        self.config_hash = self.new_id()
        self._agent_serial = 0
        self._session_serial = 0
        for _ in range(agents):
            self._new_agent()
        agent_ids = list(self.agents)
        for n in range(sessions):
            self._new_session(agent_ids[n % len(agent_ids)], history=True)
        for host in PRESENCE_HOSTS[:2]:
            self._join(host)

    # --- building the fleet --------------------------------------------------------------------

    def new_id(self) -> str:
        """A seeded UUID: the same seed gives the same ids."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _new_agent(self) -> Agent:
        n = self._agent_serial
        self._agent_serial += 1
        if n < len(AGENT_NAMES):
            agent_id, name, emoji = AGENT_NAMES[n]
        else:
            base_id, base_name, emoji = AGENT_NAMES[n % len(AGENT_NAMES)]
            suffix = n // len(AGENT_NAMES)
            agent_id, name = f"{base_id}-{suffix}", f"{base_name} {suffix}"
        provider, model, _, _ = MODELS[n % len(MODELS)]
        agent = Agent(agent_id, name, emoji, provider, model, f"~/.openclaw/workspace-{agent_id}")
        self.agents[agent_id] = agent
        return agent

    def _new_session(self, agent_id: str, *, history: bool) -> Session:
        agent = self.agents[agent_id]
        serial = self._session_serial
        self._session_serial += 1
        topic = SESSION_TOPICS[serial % len(SESSION_TOPICS)]
        name = topic if serial < len(SESSION_TOPICS) * len(self.agents) else f"{topic}-{serial}"
        key = f"agent:{agent_id}:{name}"
        while key in self.sessions:
            key = f"{key}-{serial}"
        created = self.now - (self.rng.randint(600, 6 * 3600) * 1000 if history else 0)
        session = Session(
            key=key,
            agent_id=agent_id,
            session_id=self.new_id(),
            created_at=created,
            updated_at=created,
            provider=agent.provider,
            model=agent.model,
            label=topic if self.rng.random() < 0.3 else None,
        )
        if not history:
            siblings = [s.key for s in self.sessions.values() if s.agent_id == agent_id]
            session.parent_key = siblings[0] if siblings else None
        self.sessions[key] = session
        if history:
            self._settle_past_run(session)
        return session

    def add_session(self, agent_id: str, key: str, label: str | None) -> Session:
        """Create an empty session with a given key now (what `sessions.create` does)."""
        agent = self.agents[agent_id]
        session = Session(
            key=key,
            agent_id=agent_id,
            session_id=self.new_id(),
            created_at=self.now,
            updated_at=self.now,
            provider=agent.provider,
            model=agent.model,
            label=label,
            parent_key=f"agent:{agent_id}:main",
        )
        self.sessions[key] = session
        return session

    def _settle_past_run(self, session: Session) -> None:
        """Give a seeded session the outcome of one earlier run."""
        agent = self.agents[session.agent_id]
        run = self._plan_run(session, agent)
        started = session.created_at + self.rng.randint(5, 300) * 1000
        ended = started + self.rng.randint(800, 45_000)
        run.started_at = started
        self._finish(run, ended)

    # --- the scenario ------------------------------------------------------------------------

    def advance(self, ms: int) -> list[Happening]:
        """Move scenario time forward by `ms` and return what happened, in order."""
        end = self.now + ms
        happenings: list[Happening] = []
        while self.now < end:
            step = min(100, end - self.now)
            self.now += step
            happenings += self._step(step)
        return happenings

    def _step(self, ms: int) -> list[Happening]:
        out: list[Happening] = []
        for run in list(self.runs.values()):
            while run.steps and run.steps[0][0] <= self.now:
                _, action = run.steps.pop(0)
                out += self._run_step(run, action)
        seconds = ms / 1000
        busy = {run.agent.id for run in self.runs.values()}
        for agent in list(self.agents.values()):
            if agent.id not in busy and self.rng.random() < self.run_rate * seconds:
                candidates = [s for s in self.sessions.values() if s.agent_id == agent.id]
                if candidates:
                    out += self.start_run(self.rng.choice(candidates))
        if self.churn:
            out += self._churn(seconds)
        return out

    def _churn(self, seconds: float) -> list[Happening]:
        roll = self.rng.random
        out: list[Happening] = []
        if roll() < 0.02 * seconds and self.agents:
            session = self._new_session(self.rng.choice(list(self.agents)), history=False)
            out.append(Happening("session.created", {"session": session}))
        idle = [s for s in self.sessions.values() if s.active_run_id is None]
        if roll() < 0.01 * seconds and len(idle) > 1:
            session = self.rng.choice(idle)
            del self.sessions[session.key]
            out.append(Happening("session.deleted", {"session": session}))
        if roll() < 0.004 * seconds:
            out += self._change_roster()
        if roll() < 0.01 * seconds:
            out += self._presence_change()
        if roll() < 0.02 * seconds and self.agents:
            agent = self.rng.choice(list(self.agents.values()))
            out.append(Happening("heartbeat", {"agent": agent, "ms": self.rng.randint(200, 4000)}))
        if roll() < 0.01 * seconds and self.agents:
            agent = self.rng.choice(list(self.agents.values()))
            out.append(Happening("cron", {"agent": agent, "job_id": self.new_id()}))
        return out

    def _change_roster(self) -> list[Happening]:
        choice = self.rng.random()
        busy = {run.agent.id for run in self.runs.values()}
        if choice < 0.4 or len(self.agents) < 3:
            return self.add_agent()
        if choice < 0.8:
            agent = self.rng.choice(list(self.agents.values()))
            provider, model, _, _ = self.rng.choice(MODELS)
            return self.update_agent(agent.id, model=f"{provider}/{model}")
        removable = [a.id for a in self.agents.values() if a.id not in busy]
        return self.remove_agent(self.rng.choice(removable)) if removable else []

    def add_agent(self, name: str | None = None, model: str | None = None) -> list[Happening]:
        """Add an agent (what `agents.create` does); a `name` sets its id too."""
        agent = self._new_agent()
        if name is not None:
            del self.agents[agent.id]
            agent.id = "-".join(name.lower().split()) or agent.id
            agent.name = name
            agent.workspace = f"~/.openclaw/workspace-{agent.id}"
            self.agents[agent.id] = agent
        if model is not None:
            agent.provider, _, agent.model = model.partition("/")
        return [self._config_changed("added", agent)]

    def update_agent(
        self, agent_id: str, *, name: str | None = None, model: str | None = None
    ) -> list[Happening]:
        agent = self.agents[agent_id]
        if name is not None:
            agent.name = name
        if model is not None:
            agent.provider, _, agent.model = model.partition("/")
        return [self._config_changed("updated", agent)]

    def remove_agent(self, agent_id: str) -> list[Happening]:
        """Remove an agent and its sessions (what `agents.delete` does)."""
        agent = self.agents.pop(agent_id)
        gone = [s for s in self.sessions.values() if s.agent_id == agent_id]
        for session in gone:
            del self.sessions[session.key]
        out = [self._config_changed("removed", agent)]
        out += [Happening("session.deleted", {"session": s}) for s in gone]
        return out

    def _config_changed(self, action: str, agent: Agent) -> Happening:
        self.config_hash = f"hmac-sha256:v1:{self.new_id()}"
        self.health_version += 1
        return Happening("config.changed", {"action": action, "agent": agent})

    def _presence_change(self) -> list[Happening]:
        absent = [h for h in PRESENCE_HOSTS if h not in {p.host for p in self.presence.values()}]
        if absent and (len(self.presence) < 2 or self.rng.random() < 0.5):
            self._join(self.rng.choice(absent))
        elif self.presence:
            del self.presence[self.rng.choice(list(self.presence))]
        else:
            return []
        self.presence_version += 1
        return [Happening("presence", {})]

    def _join(self, host: str) -> None:
        instance = self.new_id()
        mobile = host.startswith(("pixel", "ipad"))
        self.presence[instance] = Presence(
            instance_id=instance,
            host=host,
            ip=f"192.168.1.{10 + PRESENCE_HOSTS.index(host)}",
            platform="android" if host.startswith("pixel") else "ios" if mobile else "macos",
            device_family="phone"
            if host.startswith("pixel")
            else "tablet"
            if mobile
            else "desktop",
            mode="node" if mobile else "ui",
            ts=self.now,
        )

    # --- runs ----------------------------------------------------------------------------------

    def _plan_run(self, session: Session, agent: Agent, outcome: Outcome | None = None) -> Run:
        roll = self.rng.random()
        outcome = outcome or ("done" if roll < 0.8 else "failed" if roll < 0.92 else "killed")
        reply = self.rng.choice(REPLIES)
        return Run(
            id=self.new_id(),
            session=session,
            agent=agent,
            outcome=outcome,
            reply=reply,
            error=self.rng.choice(FAILURES) if outcome == "failed" else None,
            # A failed run was refused by its provider: it used no tokens.
            input_tokens=self.rng.randint(2_000, 40_000) if outcome != "failed" else 0,
            output_tokens=self.rng.randint(20, 1_200) if outcome != "failed" else 0,
        )

    def start_run(self, session: Session, outcome: Outcome | None = None) -> list[Happening]:
        """Start a run on `session` now; its later steps come out of `advance()`."""
        if session.active_run_id is not None:
            return []
        agent = self.agents[session.agent_id]
        run = self._plan_run(session, agent, outcome)
        run.started_at = self.now
        session.active_run_id = run.id
        session.status = "running"
        session.started_at = self.now
        session.ended_at = None
        session.updated_at = self.now
        session.provider, session.model = agent.provider, agent.model
        session.last_preview = "status?"
        self.runs[run.id] = run
        words = run.reply.split(" ")
        at = self.now + self.rng.randint(100, 400)
        run.steps.append((at, "model"))
        if run.outcome == "failed":
            run.steps.append((at + self.rng.randint(200, 1500), "error"))
            return [Happening("run.started", {"run": run})]
        chunk = max(1, len(words) // self.rng.randint(2, 5))
        for n in range(0, len(words) if run.outcome == "done" else len(words) // 2, chunk):
            at += self.rng.randint(80, 600)
            run.steps.append((at, f"delta:{n}:{n + chunk}"))
        at += self.rng.randint(50, 300)
        run.steps.append((at, "end" if run.outcome == "done" else "abort"))
        return [Happening("run.started", {"run": run})]

    def _run_step(self, run: Run, action: str) -> list[Happening]:
        if action == "model":
            return [Happening("run.model", {"run": run})]
        if action.startswith("delta:"):
            _, first, last = action.split(":")
            words = run.reply.split(" ")[int(first) : int(last)]
            delta = (" " if run.text else "") + " ".join(words)
            run.text += delta
            run.last_delta = delta
            return [Happening("run.delta", {"run": run, "delta": delta})]
        self._finish(run, self.now)
        del self.runs[run.id]
        return [Happening(f"run.{action}", {"run": run})]

    def _finish(self, run: Run, ended_at: int) -> None:
        session = run.session
        session.active_run_id = None
        session.run_id = run.id
        session.status = run.outcome
        session.started_at = run.started_at
        session.ended_at = ended_at
        session.updated_at = ended_at
        session.aborted_last_run = run.outcome == "killed"
        session.last_run_error = run.error
        session.last_preview = run.text or run.reply if run.outcome != "failed" else "status?"
        session.input_tokens = run.input_tokens
        session.output_tokens = run.output_tokens
        session.cost_usd = run.cost_usd
        session.lifetime_input += run.input_tokens
        session.lifetime_output += run.output_tokens
        session.lifetime_cost = round(session.lifetime_cost + run.cost_usd, 6)
        session.message_seq += 2

    def abort(self, run_id: str) -> list[Happening]:
        """Abort a running run now (what `chat.abort` does)."""
        run = self.runs.pop(run_id, None)
        if run is None:
            return []
        run.outcome = "killed"
        self._finish(run, self.now)
        return [Happening("run.abort", {"run": run})]
