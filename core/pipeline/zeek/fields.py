"""Field orders of logs that may come without a `#fields` header.

The ICSNPP test baselines (and some exports) omit Zeek's header lines. Each entry is the field
order its parser's README/main.zeek documents; several versions exist, told apart by the number
of columns (the newer ICSNPP logs added is_orig and source/destination after `id`).
"""

from __future__ import annotations

_ID = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
_DIR = ["is_orig", "source_h", "source_p", "destination_h", "destination_p"]


def _v(*tail: str, is_orig_only: bool = False) -> list[list[str]]:
    """The old (id, tail) and the new (id, is_orig, source/destination, tail) layouts."""
    old = _ID + (["is_orig"] if is_orig_only else []) + list(tail)
    return [old, _ID + _DIR + list(tail)]


HEADERLESS: dict[str, list[list[str]]] = {
    # Zeek's own modbus.log (base/protocols/modbus)
    "modbus": [_ID + ["func", "exception"], _ID + ["unit", "func", "pdu_type", "exception"]],
    "dnp3": [_ID + ["fc_request", "fc_reply", "iin"]],
    # cisagov/icsnpp-enip README (+ is_orig/source/destination in later releases)
    "enip": _v("enip_command_code", "enip_command", "length", "session_handle", "enip_status",
               "sender_context", "options", is_orig_only=True),
    "cip": _v("cip_sequence_count", "direction", "cip_service_code", "cip_service",
              "cip_status_code", "cip_status", "cip_extended_status_code", "cip_extended_status",
              "class_id", "class_name", "instance_id", "attribute_id", is_orig_only=True),
    "cip_io": _v("connection_id", "sequence_number", "data_length", "io_data", is_orig_only=True),
    "cip_identity": _v("encapsulation_version", "socket_address", "socket_port", "vendor_id",
                       "vendor_name", "device_type_id", "device_type_name", "product_code",
                       "revision", "device_status", "serial_number", "product_name",
                       "device_state"),
    # cisagov/icsnpp-s7comm README
    "cotp": _v("pdu_code", "pdu_name"),
    "s7comm": _v("rosctr_code", "rosctr_name", "pdu_reference", "function_code", "function_name",
                 "subfunction_code", "subfunction_name", "error_class", "error_code"),
    "s7comm_plus": _v("version", "opcode", "opcode_name", "function_code", "function_name"),
    # cisagov/icsnpp-bacnet README
    "bacnet": _v("bvlc_function", "pdu_type", "pdu_service", "invoke_id", "result_code"),
}


def headerless_fields(log: str, ncols: int) -> list[str] | None:
    """The field names of a header-less `log` with `ncols` columns, or None when unknown."""
    for names in HEADERLESS.get(log, []):
        if len(names) == ncols:
            return names
    return None
