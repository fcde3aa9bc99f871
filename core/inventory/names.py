"""Device names from the wire: DNS answers name the addresses they resolve to, DHCP host names
name the client MAC and the requested address, NetBIOS name responses name their sender."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.decode import addr

_NAMES = {"hi": pl.UInt64(), "lo": pl.UInt64(), "name": pl.String(), "source": pl.String(),
          "first_ts": pl.Int64()}
_MACNAMES = {"mac": pl.UInt64(), "name": pl.String(), "first_ts": pl.Int64()}
_SOURCE_RANK = {"dns": 0, "dhcp": 1, "nbns": 2}


# Dotted-quad text as the DNS decoder writes it (no leading zeros); anything else takes
# addr.text_to_ip, which decides what is an address
_V4_TEXT = pl.col("a").str.contains(r"^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$")


def _v4_names(d: pl.DataFrame) -> pl.DataFrame:
    """_NAMES rows of the IPv4 answers (name, ts, a), converted in one pass."""
    octets = d.filter(_V4_TEXT).select(
        "name", "ts", pl.col("a").str.split(".").list.to_struct(
            fields=["o0", "o1", "o2", "o3"]).struct.unnest()).with_columns(
        pl.col("o0", "o1", "o2", "o3").cast(pl.UInt64))
    octets = octets.filter(pl.max_horizontal("o0", "o1", "o2", "o3") <= 255)
    return octets.select(
        pl.lit(0, dtype=pl.UInt64).alias("hi"),
        (pl.lit(0xFFFF << 32, dtype=pl.UInt64) + pl.col("o0") * (1 << 24) + pl.col("o1") * (1 << 16)
         + pl.col("o2") * (1 << 8) + pl.col("o3")).alias("lo"),
        pl.col("name").str.strip_chars_end(".").alias("name"), pl.lit("dns").alias("source"),
        pl.col("ts").alias("first_ts")).cast(_NAMES)


def packet_names(p: pl.DataFrame) -> tuple[list[pl.DataFrame], pl.DataFrame | None]:
    """Names seen in a batch: (rows of _NAMES by address, rows of _MACNAMES by client MAC)."""
    new: list[pl.DataFrame] = []
    macnames = None
    # DNS: every A/AAAA address of an answer is named by the question's name
    if "dns_answers" in p.columns and p["dns_answers"].null_count() < p.height:
        d = p.select("dns_response", "dns_answers", "dns_qname", "dns_rcode", "ts").filter(
            pl.col("dns_response").fill_null(False) & pl.col("dns_answers").is_not_null()
            & pl.col("dns_qname").is_not_null() & (pl.col("dns_rcode").fill_null(0) == 0))
        if d.height:
            d = d.select(pl.col("dns_qname").alias("name"), "ts",
                         pl.col("dns_answers").str.split(",").alias("a")).explode("a")
            d = d.filter(pl.col("a").is_not_null() & (pl.col("a") != ""))
            v4 = _v4_names(d)
            if v4.height:
                new.append(v4)
            rows = []
            for name, ts, a in d.filter(~_V4_TEXT).iter_rows():  # IPv6 answers: few
                try:
                    hi, lo = addr.text_to_ip(a)
                except ValueError:
                    continue
                rows.append((hi, lo, name.rstrip("."), "dns", ts))
            if rows:
                new.append(pl.DataFrame(rows, schema=_NAMES, orient="row"))
    # DHCP: host name of the client MAC, and of the requested IP
    if "dhcp_hostname" in p.columns and p["dhcp_hostname"].null_count() < p.height:
        h = p.select("dhcp_hostname", "dhcp_chaddr", "dhcp_req_ip", "ts").filter(
            pl.col("dhcp_hostname").is_not_null() & (pl.col("dhcp_hostname") != ""))
        if h.height:
            mn = h.filter(pl.col("dhcp_chaddr").is_not_null()).select(
                pl.col("dhcp_chaddr").alias("mac"), pl.col("dhcp_hostname").alias("name"),
                pl.col("ts").alias("first_ts"))
            if mn.height:
                macnames = mn.cast(_MACNAMES)
            rows = []
            for name, req, ts in h.select("dhcp_hostname", "dhcp_req_ip", "ts").iter_rows():
                if req:
                    try:
                        hi, lo = addr.text_to_ip(req)
                    except ValueError:
                        continue
                    rows.append((hi, lo, name, "dhcp", ts))
            if rows:
                new.append(pl.DataFrame(rows, schema=_NAMES, orient="row"))
    # NBNS: a unicast answer from port 137 names its sender (workstation/server names only)
    if "nbns_name" in p.columns and p["nbns_name"].null_count() < p.height:
        nb = p.select("nbns_name", "sport", "src_hi", "src_lo", "dst_hi", "dst_lo", "eth_dst",
                      "ts").filter(pl.col("nbns_name").is_not_null() & (pl.col("sport") == 137)
                      & ~pl.col("nbns_name").str.starts_with("*")
                      & (pl.col("nbns_name").str.ends_with("<00>")
                         | pl.col("nbns_name").str.ends_with("<20>")))
        if nb.height:
            dh = nb["dst_hi"].fill_null(0).to_numpy()
            dl = nb["dst_lo"].fill_null(0).to_numpy()
            em = nb["eth_dst"].fill_null(0).to_numpy()
            # unicast: not a group address, not x.x.x.255, not an Ethernet group MAC
            uni = (~addr.is_group(dh, dl) & ~(addr.is_v4(dh, dl) & ((dl & np.uint64(255)) == 255))
                   & (((em >> np.uint64(40)) & np.uint64(1)) == 0))
            nb = nb.filter(pl.Series(uni))
            if nb.height:
                new.append(nb.select(
                    pl.col("src_hi").alias("hi"), pl.col("src_lo").alias("lo"),
                    pl.col("nbns_name").str.slice(0, pl.col("nbns_name").str.len_chars() - 4).alias("name"),
                    pl.lit("nbns").alias("source"), pl.col("ts").alias("first_ts")).cast(_NAMES))
    # PROFINET DCP: an identify response or a hello names its sender's station (the
    # Ethernet-only device of its MAC, and the IP it announces)
    if "pn_station" in p.columns and p["pn_station"].null_count() < p.height:
        pn = p.filter(pl.col("pn_station").is_not_null() & (pl.col("pn_station") != "")
                      & pl.col("pn_frame_id").is_in([0xFEFF, 0xFEFC]) & pl.col("eth_src").is_not_null())
        if pn.height:
            name = pl.col("pn_station").alias("name")
            new.append(pn.select(pl.lit(addr.L2_HI, pl.UInt64).alias("hi"), pl.col("eth_src").alias("lo"),
                                 name, pl.lit("profinet").alias("source"),
                                 pl.col("ts").alias("first_ts")).cast(_NAMES))
            ip = pn.filter(pl.col("pn_ip").fill_null(0) > 0)
            if ip.height:
                new.append(ip.select(pl.lit(0, pl.UInt64).alias("hi"),
                                     (pl.col("pn_ip") | (0xFFFF << 32)).cast(pl.UInt64).alias("lo"),
                                     name, pl.lit("profinet").alias("source"),
                                     pl.col("ts").alias("first_ts")).cast(_NAMES))
    return new, macnames

# --- the inventory ----------------------------------------------------------------------


def with_names(d: pl.DataFrame, names: pl.DataFrame, macnames: pl.DataFrame) -> pl.DataFrame:
    """The devices `d` with their best name (DNS before DHCP before NetBIOS) and up to 8 names."""
    if macnames.height:
        by_mac = d.filter(pl.col("mac").is_not_null() & pl.col("hi").is_not_null()).select(
            "hi", "lo", "mac").join(macnames, on="mac").select(
            "hi", "lo", "name", pl.lit("dhcp").alias("source"), "first_ts")
        names = pl.concat([names, by_mac.cast(_NAMES)])
    if names.height == 0:
        return d.with_columns(pl.lit(None, dtype=pl.String).alias("name"),
                              pl.lit(None, dtype=pl.String).alias("name_source"),
                              pl.lit([], dtype=pl.List(pl.String)).alias("names"))
    n = names.unique(["hi", "lo", "name", "source"], keep="first").with_columns(
        pl.col("source").replace_strict(_SOURCE_RANK, default=9).alias("rank")).sort(
        ["hi", "lo", "rank", "first_ts", "name"])
    g = n.group_by(["hi", "lo"], maintain_order=True).agg(
        pl.col("name").first(), pl.col("source").first().alias("name_source"),
        pl.col("name").unique(maintain_order=True).head(8).alias("names"))
    return d.join(g, on=["hi", "lo"], how="left").with_columns(pl.col("names").fill_null([]))
