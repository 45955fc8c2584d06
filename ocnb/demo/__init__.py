"""The embedded demo gateway: a seeded, protocol-faithful OpenClaw fleet on loopback.

`ocnb.demo(**options)` starts one and returns a live `Fleet` on it; `ocnb.demo.DemoGateway`
is the gateway itself, for tests and scripts that bring their own client.
"""

import sys
import types
from typing import Any

from ocnb.demo.gateway import DemoGateway

__all__ = ["DemoGateway"]


class _DemoModule(types.ModuleType):
    """Lets the module be called: `ocnb.demo(seed=1)` is `ocnb.fleet.demo(seed=1)`."""

    def __call__(self, **options: Any) -> Any:
        from ocnb.fleet import demo

        return demo(**options)


sys.modules[__name__].__class__ = _DemoModule
