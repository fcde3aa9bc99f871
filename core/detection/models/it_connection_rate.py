"""IT Service Connection Flood: one client opening connections to one IT service (remote desktop,
file sharing, remote shells, web, directory, databases, DNS) at a rate far above what that edge
did while learning, or above a fixed bound when it never did: a password brute force (RDP, SSH,
SMB logons tried one connection after another) or a connection flood against a server. The same
counting as the ICS Connection Flood (core/detection/models/connection_rate.py), with its own
bounds; the ICS services are that model's."""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.ics import ICS_APPS, ICS_PORTS
from plantwatch.core.detection.models.base import Context, Model
from plantwatch.core.detection.models.connection_rate import floods
from plantwatch.core.detection.records import Breach

MODEL = Model(
    "net.connection_rate", "IT Service Connection Flood", "Network", "medium", "privilege", ("T0859", "T0814"),
    False,
    "Connections from one client to one IT service (RDP, SMB, SSH, HTTP(S), DNS, ...) at a rate far "
    "above what that edge did while learning (or above a fixed bound when it never did): a brute "
    "force or a flood.")

# TCP/UDP ports of the IT services whose connection rate is judged
IT_SERVICE_PORTS = (
    21, 22, 23, 25, 53, 80, 88, 110, 135, 139, 143, 389, 443, 445, 465, 587, 636, 993, 995, 1433, 1521,
    3306, 3389, 5432, 5900, 5985, 5986, 8080, 8443,
)


def run(ctx: Context) -> list[Breach]:
    it = (pl.col("port").is_in(list(IT_SERVICE_PORTS)) & ~pl.col("port").is_in(list(ICS_PORTS))
          & ~pl.col("app").is_in(list(ICS_APPS)) & ~pl.col("s_ics") & ~pl.col("s_ext"))
    return floods(ctx, MODEL, ctx.S.filter(it))
