"""Device identity from the ICSNPP identity logs, as the IDENTITY records the packet path's
decoders give (core/decode/identity.py), so both feed one IdentityTable.

- s7comm_known_devices.log (SZL 0x001C answers): automation_system_name -> name, module_name ->
  module (ICSNPP fills it from the CPU type index, as identity_s7.py's `module`), plant_name ->
  plant_tag, module_serial -> serial; the device is the responder (id.resp_h).
- cip_identity.log (List Identity replies, Identity object reads): vendor_id, device_type_id,
  product_code, revision (as identity_cip.py writes it: major.minor with three digits), serial,
  product name; the device is the socket address the reply states, else the responder. The
  vendor name comes from the ODVA table by vendor id, as on the packet path.

A record's frame is the log line (with the log's capture id: the evidence the Zeek path keeps).
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.identity import IDENTITY, empty
from plantwatch.core.pipeline.zeek.conn import addr_pairs
from plantwatch.core.pipeline.zeek.reader import ZeekLog, ts_ns

_S7 = {"automation_system_name": "name", "module_name": "module", "plant_name": "plant_tag",
       "module_serial": "serial"}
_CIP = {"vendor_id": "vendor_id", "device_type_id": "device_type", "product_code": "product_code",
        "revision": "firmware", "serial_number": "serial", "product_name": "product"}
LOGS = {"s7comm_known_devices": ("s7comm", _S7), "cip_identity": ("enip", _CIP)}


def _revision(v: pl.Expr) -> pl.Expr:
    parts = v.str.split_exact(".", 1)
    major = parts.struct.field("field_0").cast(pl.Int64, strict=False)
    minor = parts.struct.field("field_1").cast(pl.Int64, strict=False)
    return pl.when(major.is_not_null() & minor.is_not_null()).then(
        pl.format("{}.{}", major, minor.cast(pl.String).str.pad_start(3, "0"))).otherwise(v)


def _records(log: ZeekLog, capture_id: int) -> pl.DataFrame:
    source, fields = LOGS[log.name]
    f = log.frame
    if f.height == 0 or "id.resp_h" not in f.columns:
        return empty()
    device = pl.col("id.resp_h")
    if "socket_address" in f.columns:
        device = pl.when(pl.col("socket_address").is_not_null() & ~pl.col("socket_address").is_in(["", "0.0.0.0"])
                         ).then(pl.col("socket_address")).otherwise(device)
    base = f.select(pl.lit(capture_id, pl.Int32).alias("file_id"), pl.col("_line").cast(pl.Int64).alias("frame"),
                    ts_ns().fill_null(0), device.alias("device"),
                    *[pl.col(c) for c in fields if c in f.columns])
    if "revision" in base.columns:
        base = base.with_columns(_revision(pl.col("revision")).alias("revision"))
    if "serial_number" in base.columns:  # hex as ICSNPP and tshark write it; identity_cip.py alike
        base = base.with_columns(pl.col("serial_number").str.to_lowercase())
    hi, lo = addr_pairs(base["device"])
    base = base.with_columns(pl.Series("hi", hi, pl.UInt64), pl.Series("lo", lo, pl.UInt64))
    parts = [base.select("file_id", "frame", "ts", "hi", "lo", pl.lit("").alias("component"),
                         pl.lit(attr).alias("attribute"), pl.col(col).str.strip_chars().alias("value"),
                         pl.lit(source).alias("source"))
             for col, attr in fields.items() if col in base.columns]
    if not parts:
        return empty()
    out = pl.concat(parts).filter(pl.col("value").is_not_null() & (pl.col("value") != "") & ((pl.col("hi") | pl.col("lo")) != 0))
    return out.cast(IDENTITY)


def identity_records(logs: list[tuple[ZeekLog, int]]) -> pl.DataFrame:
    """IDENTITY rows of every identity log in `logs` ((log, capture id) pairs), in time order."""
    parts = [_records(log, cid) for log, cid in logs if log.name in LOGS]
    parts = [p for p in parts if p.height]
    return pl.concat(parts).sort("ts", "file_id", "frame") if parts else empty()
