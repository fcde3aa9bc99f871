"""Packet time for the simulator: units in nanoseconds, ISO stamps, and a plant's day rhythm."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

US = 1_000
MS = 1_000_000
SEC = 1_000_000_000
MINUTE = 60 * SEC
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def ns(t: dt.datetime) -> int:
    """A timezone-aware datetime, whole seconds, as nanoseconds since the epoch."""
    return int(t.timestamp()) * SEC


def iso(t_ns: int) -> str:
    return dt.datetime.fromtimestamp(t_ns / SEC, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hour_of(t: int) -> float:
    """Hours since midnight (UTC, the plant's time) of packet time t."""
    return (t % DAY) / HOUR


def weekday(t: int) -> int:
    return dt.datetime.fromtimestamp(t / SEC, dt.UTC).weekday()


@dataclass(frozen=True)
class DayRhythm:
    """When people work: office hours on working days, when PCs boot, when the admin connects."""

    office_start_h: float = 7.5
    office_end_h: float = 17.5
    workdays: int = 5                          # Monday to Friday
    arrive_h: tuple[float, float] = (7.4, 8.6)  # a PC boots at a uniform time in this range
    leave_h: tuple[float, float] = (16.3, 17.6)
    admin_hour: int = 8                         # the IT admin's RDP round on working days

    def is_workday(self, t: int) -> bool:
        return weekday(t) < self.workdays

    def office_hours(self, t: int) -> bool:
        d = dt.datetime.fromtimestamp(t / SEC, dt.UTC)
        return d.weekday() < self.workdays and self.office_start_h <= d.hour + d.minute / 60 < self.office_end_h
