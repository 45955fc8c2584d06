"""A flood of realistic events for throughput benchmarks: rendered once, sent as fast as a
client takes them."""

from __future__ import annotations

import json
import time
from typing import Any

from ocnb.demo_gateway import payloads
from ocnb.demo_gateway.events import frames_for
from ocnb.demo_gateway.world import World

HEALTH_EVERY = 500  # one health event per this many others, as a busy gateway's timer would


def render(variety: int, protocol: int, seed: int = 1) -> list[str]:
    """`variety` event frames from a busy scratch scenario (deltas, chat, session rows,
    messages with usage, presence, health), serialised without their closing brace so that
    a `seq` can be appended per client."""
    world = World(seed=seed, start_ms=int(time.time() * 1000), run_rate=1.0, churn=True)
    frames: list[str] = []
    while len(frames) < variety:
        for happening in world.advance(100):
            for event, payload in frames_for(happening, world, protocol):
                frames.append(_open_frame(event, payload))
                if len(frames) % HEALTH_EVERY == 0:
                    frames.append(_open_frame("health", payloads.health(world, protocol)))
    return frames[:variety]


def _open_frame(event: str, payload: Any) -> str:
    text = json.dumps({"type": "event", "event": event, "payload": payload}, separators=(",", ":"))
    return text[:-1]
