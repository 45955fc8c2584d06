"""Notebook views of a fleet that refresh themselves: `fleet.grid()` and its session table."""

from ocnb.widgets.grid import FleetGrid, SessionTable
from ocnb.widgets.refresher import Refresher

__all__ = ["FleetGrid", "Refresher", "SessionTable"]
