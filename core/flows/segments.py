"""Packets to per-session segments: the per-packet flag bits, the canonical flow key, the
session boundaries (new ISN, gaps, linger after the end) and the numpy aggregates of each
segment, with their ICS operations, app counts and TLS/RDP facts (see flows/sessions.py)."""

from __future__ import annotations

import numpy as np
import polars as pl

from plantwatch.core.capture.refs import ref_expr
from plantwatch.core.decode.addr import L2_HI, hash_u64
from plantwatch.core.decode.ics import ICS_L2_APPS
from plantwatch.core.decode.schema import DIR_REQUEST
from plantwatch.core.flows.table import _OPS_ACC, _STR_SCHEMA, _endpoints

_NS = 1_000_000_000
_MASK63 = np.uint64((1 << 63) - 1)

# Per-packet flag bits, computed in one polars pass (_SELECT).
_B_PSYN, _B_SYNACK, _B_RST, _B_FIN = 1, 2, 4, 8
_B_CR, _B_DR, _B_HELLO, _B_NOSNI, _B_RDP, _B_FACTS = 16, 32, 64, 128, 256, 512
_B_ERR, _B_UNREACH, _B_APP = 1024, 2048, 4096
_B_TERM = _B_RST | _B_FIN | _B_DR | _B_UNREACH
_B_RARE = _B_PSYN | _B_SYNACK | _B_TERM | _B_CR | _B_HELLO | _B_NOSNI | _B_RDP | _B_FACTS | _B_ERR


def _tcp_lut() -> np.ndarray:
    lut = np.zeros(512, dtype=np.int32)
    for f in range(512):
        lut[f] = ((_B_PSYN if f & 0x12 == 0x02 else 0) | (_B_SYNACK if f & 0x12 == 0x12 else 0)
                  | (_B_RST if f & 0x04 else 0) | (_B_FIN if f & 0x01 else 0))
    return lut


_TCP_LUT = _tcp_lut()


def _flag_bits(packets: pl.DataFrame, proto: np.ndarray, tcp_flags: np.ndarray) -> np.ndarray:
    """The _B_* bits of every packet; columns that are null throughout are not looked at."""
    bits = _TCP_LUT[tcp_flags & 511]
    bits[proto != 6] = 0
    h = packets.height

    def has(col: str) -> bool:
        return packets[col].null_count() < h

    def b(cond: pl.Expr, bit: int) -> pl.Expr:
        return pl.when(cond).then(bit).otherwise(0)

    ex: list[pl.Expr] = []
    if has("cotp_type"):
        ex += [b(pl.col("cotp_type") == 0x0E, _B_CR), b(pl.col("cotp_type") == 0x08, _B_DR)]
    hs = pl.col("tls_hs")
    if has("tls_hs"):
        ex += [b(hs == 1, _B_HELLO), b((hs == 1) & pl.col("tls_sni").is_null(), _B_NOSNI)]
    if has("rdp_cookie"):
        ex.append(b(pl.col("rdp_cookie").is_not_null(), _B_RDP))
    if has("tls_hs") or has("cert_subject") or has("rdp_cookie"):
        ex.append(b(hs.is_not_null() | pl.col("cert_subject").is_not_null()
                    | pl.col("rdp_cookie").is_not_null(), _B_FACTS))
    if has("q_proto") and has("icmp_type"):
        pr = pl.col("ip_proto")
        it = pl.col("icmp_type")
        err = (((pr == 1) & it.is_in([3, 4, 5, 11, 12])) | ((pr == 58) & it.is_in([1, 2, 3, 4]))) & (
            pl.col("q_proto") > 0)
        ex += [b(err, _B_ERR), b(err & (((pr == 1) & (it == 3)) | ((pr == 58) & (it == 1))), _B_UNREACH)]
    if has("app"):
        ex.append(b(pl.col("app") > 0, _B_APP))
    if ex:
        more = packets.select(pl.sum_horizontal(ex).fill_null(0).cast(pl.Int32)).to_series().to_numpy()
        bits = bits | more
    return bits


# ICS on Ethernet directly (GOOSE, PROFINET): a flow between MACs, as addr.L2_HI pairs.
L2_FLOW = (pl.col("ip_ver").fill_null(0) == 0) & pl.col("app").is_in(list(ICS_L2_APPS))


def flow_addresses() -> list[pl.Expr]:
    """src_hi, src_lo, dst_hi, dst_lo of a packet's flow: its IP addresses, or for an
    Ethernet-only ICS packet (L2_FLOW) the MAC pairs of core/decode/addr.L2_HI."""
    def side(ip: str, mac: str) -> list[pl.Expr]:
        return [pl.when(L2_FLOW).then(pl.lit(L2_HI, pl.UInt64))
                .otherwise(pl.col(f"{ip}_hi").fill_null(0)).alias(f"{ip}_hi"),
                pl.when(L2_FLOW).then(pl.col(mac).fill_null(0))
                .otherwise(pl.col(f"{ip}_lo").fill_null(0)).alias(f"{ip}_lo")]
    return [*side("src", "eth_src"), *side("dst", "eth_dst")]


def _select_exprs() -> list[pl.Expr]:
    proto = pl.col("ip_proto").fill_null(0).cast(pl.Int64)
    ported = (proto == 6) | (proto == 17)
    return [
        pl.col("ts").cast(pl.Int64),
        ref_expr("file_id", "frame").alias("ref"),
        pl.col("wirelen").fill_null(0).cast(pl.Int64), pl.col("pay_len").fill_null(0).cast(pl.Int64),
        proto.cast(pl.UInt64).alias("proto"),
        *flow_addresses(),
        pl.col("sport").fill_null(0).cast(pl.UInt64), pl.col("dport").fill_null(0).cast(pl.UInt64),
        pl.col("seq").fill_null(0).cast(pl.Int64), pl.col("eth_src").fill_null(0),
        pl.col("vlan").fill_null(-1).cast(pl.Int64), pl.col("app").fill_null(0),
        pl.col("tcp_flags").fill_null(0).cast(pl.Int32),
        (((pl.col("ip_ver").fill_null(0) > 0) & ~(ported & pl.col("sport").is_null())) | L2_FLOW).alias("ok"),
    ]


_SELECT = _select_exprs()
# the flow an ICMP error quotes: only looked at on the rows of ICMP errors
_QUOTED = [
    pl.col("q_proto").fill_null(0).cast(pl.Int64),
    pl.col("q_src_hi").fill_null(0), pl.col("q_src_lo").fill_null(0),
    pl.col("q_dst_hi").fill_null(0), pl.col("q_dst_lo").fill_null(0),
    pl.col("q_sport").fill_null(0).cast(pl.UInt64), pl.col("q_dport").fill_null(0).cast(pl.UInt64),
]
_JUNK = np.iinfo(np.int64).min
_DENSE = ["ts", "ref", "wirelen", "pay_len", "proto", "src_hi", "src_lo", "dst_hi", "dst_lo",
          "sport", "dport", "seq", "eth_src", "vlan"]


def _stable_order(fk: np.ndarray, ts: np.ndarray | None) -> np.ndarray:
    """The stable argsort of the packets by flow key (then by ts when given): polars' sort, a
    few times faster than numpy's stable sort of int64 keys."""
    keys = {"fk": fk} if ts is None else {"fk": fk, "ts": ts}
    by = pl.DataFrame(keys).with_row_index("i").sort(list(keys), maintain_order=True)
    return by["i"].to_numpy().astype(np.int64)


class SegmentCutter:
    """The SessionTracker's per-batch half: packets to segments (it reads the open table
    through `_carry` and feeds the side tables)."""

    def _segments(self, packets: pl.DataFrame, ops: pl.DataFrame | None) -> dict[str, np.ndarray] | None:
        cols = packets.select(_SELECT)
        okm = cols["ok"].to_numpy()
        n = cols.height
        if n == 0 or not okm.any():
            return None
        c = {k: cols[k].to_numpy() for k in _DENSE}
        bits = _flag_bits(packets, c["proto"], cols["tcp_flags"].to_numpy())
        proto, s_hi, s_lo, d_hi, d_lo, s_pt, d_pt = (
            c["proto"], c["src_hi"], c["src_lo"], c["dst_hi"], c["dst_lo"], c["sport"], c["dport"])
        erri = np.flatnonzero(bits & _B_ERR)
        if erri.size:
            # an ICMP error belongs to the flow it quotes
            q = packets[erri].select(_QUOTED)
            proto, s_hi, s_lo, d_hi, d_lo, s_pt, d_pt = (
                x.copy() for x in (proto, s_hi, s_lo, d_hi, d_lo, s_pt, d_pt))
            qp = q["q_proto"].to_numpy().astype(np.uint64)
            proto[erri] = qp
            s_hi[erri], s_lo[erri] = q["q_src_hi"].to_numpy(), q["q_src_lo"].to_numpy()
            d_hi[erri], d_lo[erri] = q["q_dst_hi"].to_numpy(), q["q_dst_lo"].to_numpy()
            ported = (qp == 6) | (qp == 17)
            s_pt[erri] = np.where(ported, q["q_sport"].to_numpy(), 0)
            d_pt[erri] = np.where(ported, q["q_dport"].to_numpy(), 0)
        if (s_hi | d_hi).any():
            swap = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (s_pt > d_pt))))
        else:
            swap = (s_lo > d_lo) | ((s_lo == d_lo) & (s_pt > d_pt))
        a_hi = np.where(swap, d_hi, s_hi)
        a_lo = np.where(swap, d_lo, s_lo)
        b_hi = np.where(swap, s_hi, d_hi)
        b_lo = np.where(swap, s_lo, d_lo)
        a_pt = np.where(swap, d_pt, s_pt)
        b_pt = np.where(swap, s_pt, d_pt)
        packed = (proto << 32) | (a_pt << 16) | b_pt
        fk = hash_u64(packed, a_lo, b_lo)
        v6 = (a_hi | b_hi) != 0
        if v6.any():  # IPv6 flows fold in their high halves (IPv4 rows have none)
            with np.errstate(over="ignore"):
                hh = a_hi[v6] ^ (b_hi[v6] * np.uint64(0x9E3779B97F4A7C15))
            fk[v6] = hash_u64(fk[v6], hh)
        fk = fk.view(np.int64)
        if not okm.all():  # not a flow (no IP, or no ports): one junk flow, dropped below
            fk = np.where(okm, fk, _JUNK)
        orig = swap.view(np.int8)            # side (0 a, 1 b) that sent the (quoted) packet
        pdir0 = orig ^ ((bits & _B_ERR) != 0).view(np.int8)  # side that sent this packet

        ts0 = c["ts"]
        order = _stable_order(fk, ts0 if n > 1 and (ts0[1:] < ts0[:-1]).any() else None)
        fk, ts, bits, pdir = fk[order], ts0[order], bits[order], pdir0[order]
        wl, pl_ = c["wirelen"][order], c["pay_len"][order]
        f_proto = proto[order]

        pure_syn = (bits & _B_PSYN) != 0
        a_side = pdir == 0
        first = np.ones(n, dtype=bool)
        first[1:] = fk[1:] != fk[:-1]
        fidx = np.flatnonzero(first)
        carry = self._carry(fk[fidx])
        has_c = carry["row"] >= 0
        c_last_ts = carry["last_ts"]
        c_pure = carry["last_pure_syn"]
        c_seq = carry["syn_seq"]
        c_rst, c_fa, c_fb, c_dr = (carry[k] for k in ("rst", "fin_a", "fin_b", "dr"))
        flow_no = np.cumsum(first) - 1  # index into fidx / carry
        has_prior = ~first | has_c[flow_no]

        # a pure SYN whose seq differs from the flow's previous SYN (in batch, else carried) starts
        # a new session; only rows with a pure SYN are looked at
        psi = np.flatnonzero(pure_syn)
        seq = np.zeros(n, dtype=np.int64)
        new_isn = np.zeros(n, dtype=bool)
        if psi.size:
            seq[psi] = c["seq"][order[psi]]
            fl = flow_no[psi]
            prev_same = np.zeros(psi.size, dtype=bool)
            prev_same[1:] = fl[1:] == fl[:-1]
            before = np.where(prev_same, np.concatenate(([0], seq[psi][:-1])), c_seq[fl])
            new_isn[psi] = has_prior[psi] & (before != seq[psi])

        start1 = first | new_isn
        s1 = np.flatnonzero(start1)
        cont1 = first[s1] & has_c[flow_no[s1]] & ~new_isn[s1]

        prev_ts = np.empty(n, dtype=np.int64)
        prev_ts[1:] = ts[:-1]
        prev_ts[fidx] = c_last_ts
        prev_pure = np.empty(n, dtype=bool)
        prev_pure[1:] = pure_syn[:-1]
        prev_pure[fidx] = c_pure
        gap = ts - prev_ts
        idle = np.where(f_proto == 6, self.t_tcp, np.where(f_proto == 17, self.t_udp, self.t_icmp))
        gap_break = has_prior & (gap > np.where(prev_pure, self.t_unans, idle))
        # after the session ended (RST, FIN both ways, COTP DR, ICMP unreachable) the shorter
        # linger applies; only rows with a gap longer than it need to know whether it ended
        cand = np.flatnonzero(has_prior & ~gap_break & (gap > self.t_linger))
        if cand.size:
            k1 = np.searchsorted(s1, cand, side="right") - 1  # first-pass segment of each
            lo_ = s1[k1]
            carried = cont1[k1]
            fl = flow_no[cand]

            def seen(idx: np.ndarray, carried_count: np.ndarray) -> np.ndarray:
                j = np.searchsorted(idx, cand) - 1       # the last flagged row before cand
                inside = (j >= 0) & (idx[np.maximum(j, 0)] >= lo_) if idx.size else np.zeros(cand.size, bool)
                return inside | (carried & (carried_count[fl] > 0))

            fin = (bits & _B_FIN) != 0
            ended = (seen(np.flatnonzero(bits & (_B_RST | _B_UNREACH)), c_rst)
                     | (seen(np.flatnonzero(fin & a_side), c_fa) & seen(np.flatnonzero(fin & ~a_side), c_fb))
                     | seen(np.flatnonzero(bits & _B_DR), c_dr))
            gap_break[cand[ended]] = True
        start = start1 | gap_break
        st = np.flatnonzero(start)
        nseg = st.size
        seg = np.cumsum(start) - 1
        en = np.empty(nseg, dtype=np.int64)
        en[:-1] = st[1:] - 1
        en[-1] = n - 1
        cont = first[st] & has_c[flow_no[st]] & ~new_isn[st] & ~gap_break[st]
        last_of_flow = np.ones(nseg, dtype=bool)
        last_of_flow[:-1] = fk[st[1:]] != fk[st[:-1]]

        plain = (bits & _B_ERR) == 0
        ab = plain & a_side
        ba = plain & ~a_side
        ref0 = c["ref"]
        o_st, o_en = order[st], order[en]
        segs: dict[str, np.ndarray] = {
            "fk": fk[st], "proto": f_proto[st],
            "a_hi": a_hi[o_st], "a_lo": a_lo[o_st], "a_port": a_pt[o_st],
            "b_hi": b_hi[o_st], "b_lo": b_lo[o_st], "b_port": b_pt[o_st],
            "first_ts": ts[st], "first_ref": ref0[o_st], "orig_dir": orig[o_st].astype(np.int64),
            "vlan": c["vlan"][o_st],
            "last_ts": ts[en], "last_ref": ref0[o_en], "last_pure_syn": pure_syn[en],
            "pkts_ab": np.add.reduceat(ab.view(np.int8), st, dtype=np.int64),
            "bytes_ab": np.add.reduceat(np.where(ab, wl, 0), st, dtype=np.int64),
            "pay_ab": np.add.reduceat(np.where(ab, pl_, 0), st, dtype=np.int64),
        }
        if plain.all():  # no ICMP errors: b to a is the rest of each segment
            segs["pkts_ba"] = np.diff(np.append(st, n)) - segs["pkts_ab"]
            segs["bytes_ba"] = np.add.reduceat(wl, st, dtype=np.int64) - segs["bytes_ab"]
            segs["pay_ba"] = np.add.reduceat(pl_, st, dtype=np.int64) - segs["pay_ab"]
        else:
            segs["pkts_ba"] = np.add.reduceat(ba.view(np.int8), st, dtype=np.int64)
            segs["bytes_ba"] = np.add.reduceat(np.where(ba, wl, 0), st, dtype=np.int64)
            segs["pay_ba"] = np.add.reduceat(np.where(ba, pl_, 0), st, dtype=np.int64)
        # the rare flags: counted and located on the few rows that carry them
        ri = np.flatnonzero(bits & _B_RARE)
        rb, rs, rd = bits[ri], seg[ri], pdir[ri]
        rref = ref0[order[ri]]

        def cnt(mask: np.ndarray) -> np.ndarray:
            return np.bincount(rs[mask], minlength=nseg).astype(np.int64)

        def first_of(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
            out = np.full(nseg, -1, dtype=np.int64)
            ix = np.flatnonzero(mask)
            if ix.size:
                ss = rs[ix]
                keep = np.ones(ix.size, dtype=bool)
                keep[1:] = ss[1:] != ss[:-1]
                out[ss[keep]] = values[ix[keep]]
            return out

        ra = rd == 0
        for name, bit in (("syn", _B_PSYN), ("synack", _B_SYNACK), ("rst", _B_RST), ("fin", _B_FIN),
                          ("cr", _B_CR), ("dr", _B_DR)):
            m = (rb & bit) != 0
            segs[name + "_a"] = cnt(m & ra)
            segs[name + "_b"] = cnt(m & ~ra)
        unr = (rb & _B_UNREACH) != 0
        segs["unreach"] = cnt(unr)
        segs["icmp_err"] = cnt((rb & _B_ERR) != 0)
        segs["nosni"] = cnt((rb & _B_NOSNI) != 0)
        psyn_r = (rb & _B_PSYN) != 0
        synack_r = (rb & _B_SYNACK) != 0
        segs["syn_seq"] = first_of(psyn_r, seq[ri])
        segs["syn_dir"] = first_of(psyn_r, rd.astype(np.int64))
        segs["synack_dir"] = first_of(synack_r, rd.astype(np.int64))
        for name, bit in (("ev_syn", _B_PSYN), ("ev_synack", _B_SYNACK), ("ev_rst", _B_RST),
                          ("ev_fin", _B_FIN), ("ev_unreach", _B_UNREACH), ("ev_dr", _B_DR),
                          ("ev_tls", _B_HELLO), ("ev_rdp", _B_RDP)):
            segs[name] = first_of((rb & bit) != 0, rref)
        # MACs: the source MAC of the first packet each way
        mac0 = c["eth_src"]
        for name, m in (("mac_a", ab), ("mac_b", ba)):
            ix = np.flatnonzero(m)
            out = np.full(nseg, -1, dtype=np.int64)
            if ix.size:
                ss = seg[ix]
                keep = np.ones(ix.size, dtype=bool)
                keep[1:] = ss[1:] != ss[:-1]
                v = mac0[order[ix[keep]]].astype(np.int64)
                out[ss[keep]] = np.where(v > 0, v, -1)
            segs[name] = out

        # session ids: carried for continuing segments, a new hash for the others
        c_sid = carry["sid"]
        new_sid = (hash_u64(fk[st], ts[st]) & _MASK63).view(np.int64)
        sid = np.where(cont, c_sid[flow_no[st]], new_sid)
        # the junk flow has the smallest key: its segments come first
        junk = int(np.searchsorted(fk[st], _JUNK, side="right"))
        self.last_endpoints = _endpoints(segs, junk)
        sid[:junk] = -1
        segs["sid"] = sid
        segs["n_ops"] = np.zeros(nseg, dtype=np.int64)
        segs["ev_op"] = np.full(nseg, -1, dtype=np.int64)
        segs["cont"] = cont
        segs["last_of_flow"] = last_of_flow
        segs["orow"] = np.where(cont, carry["row"][flow_no[st]], -1)  # the open row it continues

        # rare string facts (TLS, certificates, RDP): only the rows that carry them
        fi = ri[(rb & _B_FACTS) != 0]
        fi = fi[sid[seg[fi]] >= 0]
        if fi.size:
            sub = packets[order[fi]].select(list(_STR_SCHEMA)).with_columns(
                pl.Series("sid", sid[seg[fi]]))
            self._facts_new.append(sub.group_by("sid", maintain_order=True).agg(
                [pl.col(k).drop_nulls().first() for k in _STR_SCHEMA]))

        # app counts per session: runs of (segment, app) in sorted order
        appi = np.flatnonzero(bits & _B_APP)
        if appi.size:
            k = seg[appi] * 256 + cols["app"].to_numpy()[order[appi]].astype(np.int64)
            brk = np.ones(k.size, dtype=bool)
            brk[1:] = k[1:] != k[:-1]
            rs_ = np.flatnonzero(brk)
            runs = np.diff(np.append(rs_, k.size))
            ku = k[rs_]
            rsid = sid[ku // 256]
            m = rsid >= 0
            self._apps_new.append(pl.DataFrame(
                {"sid": rsid[m], "app": (ku[m] % 256).astype(np.uint8), "n": runs[m].astype(np.int64)}))

        if ops is not None and ops.height:
            self._add_ops(segs, ops, ref0, order, seg, sid, pdir0, n)
        if junk:
            segs = {k: v[junk:] for k, v in segs.items()}
        return segs

    def _add_ops(self, segs: dict[str, np.ndarray], ops: pl.DataFrame, ref0: np.ndarray, order: np.ndarray,
                 seg: np.ndarray, sid: np.ndarray, pdir0: np.ndarray, n: int) -> pl.DataFrame:
        """ICS operations per session, joined to their packet by (file_id, frame)."""
        o = ops.select(
            ref_expr("file_id", "frame").alias("ref"),
            (pl.col("direction") == DIR_REQUEST).fill_null(False).alias("req"),
            pl.col("app").fill_null(0), pl.col("code"), pl.col("cls").fill_null(0), pl.col("name"),
            pl.col("exception").is_not_null().cast(pl.Int64).alias("exc"),
            pl.col("name").hash(seed=7).alias("nh"), pl.col("code").fill_null(-1).alias("cd"),
        )
        oref = o["ref"].to_numpy()
        if ref0.size > 1 and (ref0[1:] > ref0[:-1]).all():
            srt, keys = None, ref0
        else:
            srt = np.argsort(ref0, kind="stable")
            keys = ref0[srt]
        k = np.minimum(np.searchsorted(keys, oref), keys.size - 1)
        hit = keys[k] == oref
        row = k if srt is None else srt[k]          # row in the batch
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        pos = inv[row]                               # position in the sorted batch
        osid = sid[seg[pos]]
        odir = pdir0[row]
        ok = hit & (osid >= 0)
        small = (odir.astype(np.uint64) | (o["req"].to_numpy().astype(np.uint64) << np.uint64(1))
                 | (o["cls"].to_numpy().astype(np.uint64) << np.uint64(2))
                 | (o["app"].to_numpy().astype(np.uint64) << np.uint64(8))
                 | ((o["cd"].to_numpy().astype(np.int64) & 0xFFFFFFFF).astype(np.uint64) << np.uint64(16)))
        gk = hash_u64(osid, small, o["nh"].to_numpy()).view(np.int64)
        o = o.with_columns(pl.Series("sid", osid), pl.Series("dir", odir), pl.Series("gk", gk),
                           pl.Series("first_pos", pos + self._pos_base)).filter(pl.Series(ok))
        self._pos_base += n + 1
        if o.height == 0:
            return
        oa = o.group_by("gk").agg(
            pl.col("sid", "dir", "req", "app", "code", "cls", "name").first(),
            pl.len().cast(pl.Int64).alias("count"), pl.col("exc").sum().alias("exceptions"),
            pl.col("first_pos").min(), pl.col("ref").get(pl.col("first_pos").arg_min()).alias("first_ref"),
        )
        per = oa.group_by("sid").agg(
            pl.col("count").sum().alias("n"),
            pl.col("first_ref").get(pl.col("first_pos").arg_min()).alias("ev")).sort("sid")
        psid = per["sid"].to_numpy()
        dsid = segs["sid"]
        j = np.minimum(np.searchsorted(psid, dsid), psid.size - 1)
        found = psid[j] == dsid
        segs["n_ops"] = np.where(found, per["n"].to_numpy()[j], 0)
        segs["ev_op"] = np.where(found, per["ev"].to_numpy()[j], -1)
        self._ops_new.append(oa.select(list(_OPS_ACC)).cast(_OPS_ACC))
