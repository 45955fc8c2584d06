"""Plots of `ocnb.analysis` frames with matplotlib: static images that read the same in a
notebook, in exported HTML and on GitHub. Each function takes the frame and returns its Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.ticker import MaxNLocator

Colour = str | list[float] | tuple[float, float, float] | tuple[float, float, float, float]
TOP_ERRORS = 10
ERROR_WIDTH = 60


def palette(count: int) -> list[Colour]:
    """`count` colours, none repeated: the tab10 / tab20 sets, beyond them a sampled colour map
    (matplotlib's default cycle repeats after ten groups)."""
    if count <= 20:
        colours = plt.get_cmap("tab10" if count <= 10 else "tab20").colors  # type: ignore[attr-defined]
        return [to_hex(colour) for colour in colours[:count]]
    return [to_hex(colour) for colour in plt.get_cmap("turbo")(np.linspace(0.05, 0.95, count))]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    return ax


def _over_time(frame: pd.DataFrame, value: str, ax: Axes | None, title: str) -> Axes:
    """One bar per time bucket, stacked by the frame's group column (its second column)."""
    ax = _axes(ax)
    group = frame.columns[1]
    table = frame.pivot_table(index="bucket", columns=group, values=value, aggfunc="sum")
    if table.empty:
        ax.set_title(f"{title} (no data yet)")
        return ax
    table.index = pd.DatetimeIndex(table.index).strftime("%m-%d %H:%M")
    table.plot.bar(stacked=True, ax=ax, width=0.9, rot=0, color=palette(table.shape[1]))
    ax.set(title=title, xlabel="", ylabel=value.replace("_", " "))
    ax.legend(title=group, fontsize="small", ncols=2)
    ax.xaxis.set_major_locator(MaxNLocator(8))
    return ax


def activity(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Events per bucket (`analysis.activity`)."""
    return _over_time(frame, "events", ax, "Events")


def token_usage(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Tokens per bucket (`analysis.token_usage`)."""
    return _over_time(frame, "total_tokens", ax, "Tokens")


def cost(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Running cost per group (`analysis.cost`)."""
    ax = _axes(ax)
    group = frame.columns[1]
    table = frame.pivot_table(index="bucket", columns=group, values="cumulative_usd").ffill()
    if table.empty:
        ax.set_title("Cost (no data yet)")
        return ax
    table.plot(ax=ax, drawstyle="steps-post", color=palette(table.shape[1]))
    ax.set(title="Cumulative cost", xlabel="", ylabel="USD")
    ax.legend(title=group, fontsize="small", ncols=2)
    return ax


def runs(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Runs per agent, stacked by outcome (`analysis.runs`)."""
    ax = _axes(ax)
    table = frame.pivot_table(index="agent_id", columns="status", values="run_id", aggfunc="count")
    if table.empty:
        ax.set_title("Runs (none yet)")
        return ax
    table.fillna(0).plot.barh(stacked=True, ax=ax)
    ax.set(title="Runs by outcome", xlabel="runs", ylabel="")
    ax.invert_yaxis()
    return ax


def errors(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """The most frequent failure messages (`analysis.errors`)."""
    ax = _axes(ax)
    top = frame.head(TOP_ERRORS)
    if top.empty:
        ax.set_title("Errors (none)")
        return ax
    labels = top["error"].fillna("(no message)").str.slice(0, ERROR_WIDTH)
    ax.barh(labels, top["runs"])
    ax.set(title="Failed runs by message", xlabel="runs")
    ax.invert_yaxis()
    return ax
