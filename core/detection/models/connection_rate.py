"""ICS Connection Flood: one client opening connections to one ICS service (an ICS port or
protocol, or a server that is an OT/ICS device) at a rate far above what that edge did while
learning, or above a fixed bound when it never did: connection exhaustion of a controller
(a SYN flood, a tool reconnecting in a loop). A client that reconnects for every poll is covered
by its learned rate.

Connections are sessions (a new SYN is a new session) counted over a burst of the edge (sessions
no more than `window_s` apart, at least `min_sessions` of them within `window_s`); the rate is
their count over their span (at least `min_span_s`)."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.detection.models.base import (
    NS,
    Context,
    Model,
    dur,
    evidence,
    groups,
    hours_text,
    span,
)
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import poisson_importance

MODEL = Model(
    "ics.connection_rate", "ICS Connection Flood", "ICS", "high", "impact", ("T0814",), False,
    "Connections from one client to one ICS service at a rate far above what that edge did while "
    "learning (or above a fixed bound when it never did): a flood that can exhaust a controller.")


def run(ctx: Context) -> list[Breach]:
    ics = pl.col("port").is_in(list(ICS_PORTS)) | pl.col("app").is_in(list(ICS_APPS)) | pl.col("s_ics")
    return floods(ctx, MODEL, ctx.S.filter(ics))


def floods(ctx: Context, model: Model, f: pl.DataFrame) -> list[Breach]:
    """The bursts of one edge among sessions `f` whose rate is above the edge's learned rate (or,
    for an edge with no history, above the cold-start bound and above what the service's other
    clients reach, by the baseline's fan-out rule: fanout_margin times what fanout_sources others
    reached): the breaches of `model`, with its config (window_s, min_sessions, min_span_s, factor,
    cold_per_minute)."""
    c = ctx.mcfg(model)
    w, n_min, min_span = float(c["window_s"]), int(c["min_sessions"]), float(c["min_span_s"])
    factor, cold_per_min = float(c["factor"]), float(c["cold_per_minute"])
    f = (f.filter(~pl.col("s_group") & (pl.col("c") != pl.col("s")))
         .select("c", "s", "port", "first_ts", "last_ts", "ref", "session_id", "edge_b", "failed"))  # sorted below
    bursts = []
    for g in groups(f, ["c", "s", "port"], w, min_count=n_min, window_s=w):
        a, b = span(g)
        span_s = max(min_span, (b - a) / NS)
        bursts.append((g, a, b, span_s, g.height / span_s * 60))
    peers = _PeerRates(bursts, int(ctx.cfg["baseline"]["fanout_sources"]))
    peer_factor = float(ctx.cfg["baseline"]["fanout_margin"])
    out = []
    for g, a, b, span_s, per_min in bursts:
        n = g.height
        dev, dst, port = g["c"][0], g["s"][0], int(g["port"][0])
        nb = int(g["edge_b"][0])
        if nb and ctx.hours_b > 0:
            learned_per_min = nb / (ctx.hours_b * 60)
            bound = max(learned_per_min * factor, cold_per_min / factor)
            base = (f"this edge carried {nb:,} connection(s) in {hours_text(ctx.hours_b)} of learning "
                    f"({learned_per_min:.2g} per minute)")
        else:
            bound = cold_per_min
            base = (f"{'there is no baseline yet' if ctx.cold else 'this edge never carried one while learning'}; "
                    f"more than {cold_per_min:g} per minute is a flood")
            peer = peers.reference(dst, port, dev)
            if peer * peer_factor > bound:
                # a shared service (a resolver, a proxy) that many clients use this hard: the
                # client must stand out from them, not from a fixed bound
                bound = peer * peer_factor
                base += (f", and more than {peer_factor:g}x the {peers.k} busiest other clients of this service "
                         f"(at least {peer:,.0f} per minute each)")
        expected = bound * span_s / 60
        if n <= expected:
            continue
        failed = int(g["failed"].sum())
        expl = (f"{dev} opened {n:,} connection(s) to {dst} port {port} within {dur(a, b)}, {per_min:,.0f} per "
                f"minute ({failed:,} failed); {base}.")
        sids, refs = evidence(g)
        out.append(ctx.breach(model, dev, [dst], a, b, poisson_importance(n, expected), expl, sids, refs,
                              {"connections": n, "failed": failed, "port": port, "per_minute": round(per_min, 1),
                               "baseline_connections": nb, "expected": round(expected, 2)}))
    return out


class _PeerRates:
    """Per service (server, port): each client's highest burst rate. A client's peer reference is
    the rate that its `k` busiest other clients all reached (0 with fewer than `k` others): many
    clients reconnecting to the same service at a high rate is how that service is used."""

    def __init__(self, bursts: list[tuple[pl.DataFrame, int, int, float, float]], k: int) -> None:
        self.k = k
        self.rates: dict[tuple[str, int], dict[str, float]] = {}
        for g, _a, _b, _span, per_min in bursts:
            by_client = self.rates.setdefault((g["s"][0], int(g["port"][0])), {})
            client = g["c"][0]
            by_client[client] = max(per_min, by_client.get(client, 0.0))

    def reference(self, server: str, port: int, client: str) -> float:
        others = sorted((r for c, r in self.rates.get((server, port), {}).items() if c != client), reverse=True)
        return others[self.k - 1] if self.k > 0 and len(others) >= self.k else 0.0
