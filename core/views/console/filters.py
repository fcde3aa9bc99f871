"""The console's filter languages (`key:value` words) for devices and connections, parsed here
so they can be tested without a UI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from plantwatch.core.views.console import vocabulary
from plantwatch.core.views.console.common import FilterError, fmt_ts


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    zone: str | None = None
    role: str | None = None
    score_op: str | None = None
    score: float | None = None
    port: int | None = None
    new: bool | None = None
    vendor: str | None = None
    model: str | None = None      # identity from the wire (substrings, lower case)
    firmware: str | None = None
    serial: str | None = None
    site: str | None = None       # one site of a store holding many (exact name)
    text: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self == DeviceFilter()


@dataclass(frozen=True, slots=True)
class ConnFilter:
    device: str | None = None
    port: int | None = None
    proto: str | None = None      # application name (s7comm, modbus, tls...) or tcp/udp/icmp
    state: str | None = None
    model: str | None = None
    since: int | None = None      # packet time, ns
    until: int | None = None
    site: str | None = None
    text: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{k}:{v}" for k, v in (("site", self.site), ("device", self.device), ("port", self.port),
                                         ("proto", self.proto), ("state", self.state),
                                         ("model", self.model)) if v is not None]
        if self.since is not None:
            parts.append(f"since:{fmt_ts(self.since)}")
        if self.until is not None:
            parts.append(f"until:{fmt_ts(self.until)}")
        return " ".join(parts + list(self.text))


_TOKEN = re.compile(r'(\w+):("[^"]*"|\S+)|("[^"]*"|\S+)')
_SCORE = re.compile(r"^(>=|<=|>|<|=)?\s*([0-9]*\.?[0-9]+)$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def _tokens(text: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for m in _TOKEN.finditer(text or ""):
        if m.group(1):
            out.append((m.group(1).lower(), m.group(2).strip('"')))
        else:
            out.append((None, m.group(3).strip('"')))
    return out


def _port(v: str) -> int:
    if not v.isdigit() or not 0 <= int(v) <= 65535:
        raise FilterError(f"port:{v} is not a port number")
    return int(v)


def _site_name(val: str) -> str:
    if not val:
        raise FilterError("site: needs a site name, e.g. site:plant-a")
    return val


def parse_site(text: str) -> str | None:
    """The `site:NAME` term of any of the console's filters (the last one given), else None."""
    found = None
    for key, val in _tokens(text):
        if key == "site":
            found = _site_name(val)
    return found


def parse_device_filter(text: str) -> DeviceFilter:
    kw: dict = {}
    words: list[str] = []
    for key, val in _tokens(text):
        if key is None:
            words.append(val.lower())
        elif key == "site":
            kw["site"] = _site_name(val)
        elif key == "zone":
            kw["zone"] = val.lower()
        elif key == "role":
            kw["role"] = vocabulary.role(val)
        elif key == "vendor":
            kw["vendor"] = val.lower()
        elif key == "port":
            kw["port"] = _port(val)
        elif key in ("model", "serial"):
            kw[key] = val.lower()
        elif key in ("fw", "firmware"):
            kw["firmware"] = val.lower()
        elif key == "score":
            m = _SCORE.match(val)
            if not m:
                raise FilterError(f"score:{val}: write e.g. score:>0.5")
            kw["score_op"], kw["score"] = m.group(1) or ">=", float(m.group(2))
        elif key == "new":
            if val.lower() not in _YES | _NO:
                raise FilterError(f"new:{val}: write new:yes or new:no")
            kw["new"] = val.lower() in _YES
        else:
            raise FilterError(f"unknown filter {key}: (use zone role score port new vendor model fw serial site)")
    return DeviceFilter(text=tuple(words), **kw)


def _time_of_day(v: str, ref: int | None) -> int:
    """'2026-03-03T13:00', '2026-03-03 13:00:00' or '13:00' (on the day of `ref`), as ns."""
    v = v.replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(v, fmt).replace(tzinfo=UTC).timestamp()) * 1_000_000_000
        except ValueError:
            pass
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            t = datetime.strptime(v, fmt)
        except ValueError:
            continue
        day = datetime.fromtimestamp((ref or 0) / 1e9, tz=UTC).replace(hour=0, minute=0, second=0,
                                                                        microsecond=0)
        return int(day.timestamp() + t.hour * 3600 + t.minute * 60 + t.second) * 1_000_000_000
    raise FilterError(f"{v!r} is not a time (write 2026-03-03T13:00 or 13:00)")


def parse_conn_filter(text: str, ref_ts: int | None = None) -> ConnFilter:
    kw: dict = {}
    words: list[str] = []
    for key, val in _tokens(text):
        if key is None:
            words.append(val.lower())
        elif key == "site":
            kw["site"] = _site_name(val)
        elif key in ("device", "ip", "host"):
            kw["device"] = val          # an address or a name: resolved against the store
        elif key == "port":
            kw["port"] = _port(val)
        elif key in ("proto", "protocol", "app"):
            kw["proto"] = vocabulary.protocol(val)
        elif key == "state":
            kw["state"] = vocabulary.conn_state(val)
        elif key == "model":
            vocabulary.models_for(val)
            kw["model"] = val
        elif key in ("since", "from"):
            kw["since"] = _time_of_day(val, ref_ts)
        elif key in ("until", "to"):
            kw["until"] = _time_of_day(val, ref_ts)
        else:
            raise FilterError(f"unknown filter {key}: (use device port proto state model since until site)")
    return ConnFilter(text=tuple(words), **kw)


def parse_breach_filter(text: str) -> tuple[str | None, str | None]:
    """The breach log's filter: (part of a model name or None, state or None). `state:` takes
    new, ack(nowledged), resolved, fp / false-positive, accepted, suppressed, window or all;
    `site:` is read by parse_site."""
    from plantwatch.core.views.console.breaches import STATE_WORDS

    model: list[str] = []
    state = None
    for key, val in _tokens(text):
        if key == "state":
            if val.lower() not in STATE_WORDS:
                raise FilterError(f"state:{val} is not a state (new ack resolved fp accepted suppressed window all)")
            state = STATE_WORDS[val.lower()]
        elif key == "model":
            model.append(val)
        elif key == "site":
            _site_name(val)
        elif key is not None:
            raise FilterError(f"unknown filter {key}: (use model:, state: and site:, or part of a model name)")
        else:
            model.append(val)
    return (" ".join(model) or None), state
