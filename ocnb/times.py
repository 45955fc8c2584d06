"""Time, as ocnb reads and stamps it: moments a user types (`as_utc`) and epoch milliseconds."""

from __future__ import annotations

import numbers
import time
from typing import Any

import pandas as pd

from ocnb.errors import InvalidTime


def now_ms() -> int:
    """Now, in epoch milliseconds (how the store stamps what it receives)."""
    return int(time.time() * 1000)


TIME_FORMS = (
    "a datetime or pandas Timestamp (naive ones are UTC), an ISO 8601 string such as "
    "'2026-11-24 10:00' or '2026-11-24T10:00:00+01:00', 'now', a duration ago such as "
    "'90min ago' or '2h ago', or epoch milliseconds"
)


def as_utc(when: Any) -> pd.Timestamp:
    """A moment, in any of the `TIME_FORMS`, as a UTC timestamp; `InvalidTime` if it is none."""
    if isinstance(when, numbers.Real) and not isinstance(when, bool):  # numpy's numbers too
        return pd.Timestamp(int(float(when)), unit="ms", tz="UTC")
    try:
        if isinstance(when, str) and when.strip().endswith(" ago"):
            return pd.Timestamp.now("UTC") - pd.Timedelta(when.strip().removesuffix(" ago"))
        stamp = pd.Timestamp(when)
    except (ValueError, TypeError) as exc:
        raise InvalidTime(f"cannot read {when!r} as a moment; give {TIME_FORMS}") from exc
    if pd.isna(stamp):
        raise InvalidTime(f"{when!r} is no moment; give {TIME_FORMS}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
