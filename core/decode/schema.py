"""The fixed schemas the decoders produce.

`PACKETS` has one row per captured record. `OPS` has one row per ICS operation (a PDU: one
Modbus request, one S7 job, one DNP3 application fragment...), so a segment carrying several PDUs
gives several rows. Both carry (file_id, frame) so every fact points back to its packet.

Addresses: every IP address is stored as 128 bits in two uint64 columns (`*_hi`, `*_lo`);
IPv4 uses the IPv4-mapped form ::ffff:a.b.c.d, so one integer pair identifies any address and
grouping never touches strings. MAC addresses are uint64 holding the 48-bit value.
"""

from __future__ import annotations

import polars as pl

# Application protocols recognised on a packet (column `app`).
APP_NONE = 0
APP_MODBUS = 1
APP_S7 = 2       # S7comm (and COTP/TPKT on 102)
APP_DNP3 = 3
APP_ENIP = 4     # EtherNet/IP, CIP inside
APP_IEC104 = 5
APP_BACNET = 6
APP_OPCUA = 7
APP_S7PLUS = 8
# every id below 20 is an ICS protocol
APP_FINS = 14    # Omron FINS (UDP, or TCP with the FINS/TCP header)
APP_ADS = 15     # Beckhoff ADS/AMS (TCP 48898) and its UDP route discovery (48899)
APP_MELSEC = 16  # Mitsubishi MC protocol / SLMP (3E, 4E; binary, ASCII), MELSOFT recognised
APP_HARTIP = 17
APP_C37118 = 18  # IEEE C37.118 synchrophasor
APP_MMS = 9        # IEC 61850 / ISO 9506 MMS over ISO-on-TCP (102)
APP_GOOSE = 10     # IEC 61850 GOOSE (ethertype 0x88B8)
APP_PROFINET = 11  # PROFINET DCP and RT (ethertype 0x8892)
APP_TLS = 20
APP_RDP = 21
APP_DNS = 22
APP_DHCP = 23
APP_NBNS = 24
APP_ARP = 25
APP_HTTP = 26
APP_SMB = 27
APP_NTP = 28
APP_NAMES = {
    APP_NONE: "", APP_MODBUS: "modbus", APP_S7: "s7comm", APP_DNP3: "dnp3", APP_ENIP: "enip",
    APP_IEC104: "iec104", APP_BACNET: "bacnet", APP_OPCUA: "opcua", APP_S7PLUS: "s7comm-plus",
    APP_TLS: "tls", APP_RDP: "rdp", APP_DNS: "dns", APP_DHCP: "dhcp", APP_NBNS: "nbns",
    APP_ARP: "arp", APP_HTTP: "http", APP_SMB: "smb", APP_NTP: "ntp",
    APP_FINS: "fins", APP_ADS: "ads", APP_MELSEC: "melsec", APP_HARTIP: "hart-ip",
    APP_C37118: "c37.118",
    APP_MMS: "mms", APP_GOOSE: "goose", APP_PROFINET: "profinet",
}

# Null means "not present in this packet" for every optional column.
PACKETS: dict[str, pl.DataType] = {
    # record
    "file_id": pl.Int32(), "frame": pl.Int64(), "ts": pl.Int64(),  # ts: ns since epoch
    "caplen": pl.Int32(), "wirelen": pl.Int32(), "linktype": pl.Int32(),
    # link
    "eth_src": pl.UInt64(), "eth_dst": pl.UInt64(), "ethertype": pl.UInt16(),
    "vlan": pl.Int32(),        # outermost 802.1Q/802.1ad VLAN id
    "vlan_inner": pl.Int32(),  # second tag (QinQ)
    # network
    "ip_ver": pl.UInt8(),      # 0 none, 4, 6
    "src_hi": pl.UInt64(), "src_lo": pl.UInt64(), "dst_hi": pl.UInt64(), "dst_lo": pl.UInt64(),
    "ip_proto": pl.UInt8(), "ttl": pl.UInt8(),
    "ip_frag": pl.Boolean(),   # a non-first fragment, or first fragment with more to come
    # transport
    "sport": pl.Int32(), "dport": pl.Int32(),
    "tcp_flags": pl.UInt16(),  # the 9 flag bits (NS..FIN), as tcp.flags
    "seq": pl.UInt32(), "ack": pl.UInt32(), "win": pl.UInt32(),  # raw (absolute) sequence numbers
    "pay_off": pl.Int32(),     # offset of the L4 payload from the start of the record
    "pay_len": pl.Int32(),     # L4 payload bytes (by IP length, bounded by what was captured)
    "icmp_type": pl.Int16(), "icmp_code": pl.Int16(),
    # the flow an ICMP error quotes (its inner IP/L4 header)
    "q_proto": pl.UInt8(), "q_src_hi": pl.UInt64(), "q_src_lo": pl.UInt64(),
    "q_dst_hi": pl.UInt64(), "q_dst_lo": pl.UInt64(), "q_sport": pl.Int32(), "q_dport": pl.Int32(),
    # application
    "app": pl.UInt8(),         # APP_* above
    "cotp_type": pl.Int16(),   # COTP PDU type (0x0E CR, 0x0D CC, 0x08 DR, 0x0F DT ...)
    "tls_hs": pl.Int16(),      # first TLS handshake type in the record (1 ClientHello, 2 ServerHello, 11 Certificate)
    "tls_version": pl.Int32(), # ClientHello/ServerHello legacy version (tls.handshake.version)
    "tls_sni": pl.String(),    # server_name; null when absent (a ClientHello without SNI has tls_hs=1, tls_sni null)
    "tls_ja3": pl.String(),    # JA3 string (the full one, not its MD5) of a ClientHello
    "tls_ja3_hash": pl.String(),
    "cert_subject": pl.String(), "cert_issuer": pl.String(),  # leaf certificate, RFC 4514 strings
    "cert_self_signed": pl.Boolean(),
    "rdp_cookie": pl.String(),   # user from 'Cookie: mstshash=<user>'
    "rdp_protocols": pl.Int64(), # RDP_NEG_REQ requestedProtocols
    "dns_id": pl.Int32(), "dns_response": pl.Boolean(), "dns_qname": pl.String(), "dns_qtype": pl.Int32(),
    "dns_answers": pl.String(),  # comma-separated A/AAAA addresses of the answer section
    "dns_rcode": pl.Int16(),
    "dhcp_type": pl.Int16(), "dhcp_hostname": pl.String(), "dhcp_req_ip": pl.String(),
    "dhcp_chaddr": pl.UInt64(),
    "nbns_name": pl.String(),
    "arp_op": pl.Int32(), "arp_sha": pl.UInt64(), "arp_spa": pl.UInt64(),  # op: 16 bits unsigned; spa as IPv4 integer
    "arp_tpa": pl.UInt64(),
    # IEC 61850 GOOSE (one PDU per frame)
    "goose_appid": pl.Int32(), "goose_gocb": pl.String(), "goose_dataset": pl.String(),
    "goose_id": pl.String(), "goose_stnum": pl.Int64(), "goose_sqnum": pl.Int64(),
    "goose_simulation": pl.Boolean(), "goose_confrev": pl.Int64(),
    # PROFINET: FrameID (0xFEFC-0xFEFF DCP, 0x8000-0xFBFF RT cyclic); DCP identity of a device
    "pn_frame_id": pl.Int32(), "pn_station": pl.String(), "pn_vendor_id": pl.Int32(),
    "pn_device_id": pl.Int32(), "pn_ip": pl.UInt64(),  # IPv4 integer (DCP IP block)
}

# Operation classes (core/decode/ics.py maps protocol codes to these).
CLS_NONE = 0
CLS_READ = 1
CLS_DISCOVER = 2
CLS_ACTION = 3
CLS_REPROGRAM = 4
CLASS_NAMES = {CLS_NONE: "", CLS_READ: "READ", CLS_DISCOVER: "DISCOVER", CLS_ACTION: "ACTION",
               CLS_REPROGRAM: "REPROGRAM"}

# Direction of an operation PDU.
DIR_REQUEST = 0
DIR_RESPONSE = 1
DIR_OTHER = 2  # indications, push, unsolicited, or undecidable

OPS: dict[str, pl.DataType] = {
    "file_id": pl.Int32(), "frame": pl.Int64(),
    "app": pl.UInt8(),        # APP_* of the protocol
    "direction": pl.UInt8(),  # DIR_*
    "code": pl.Int32(),       # function / service / type id (Modbus FC without the 0x80 bit, S7 param func (userdata: group<<8|subfunction), DNP3 AL func, CIP service without 0x80, IEC104 type id, BACnet service, OPC UA service node id, ENIP command when no CIP, S7comm-plus function); key conventions: core/decode/ics.py docstring
    "sub": pl.Int32(),        # Modbus MEI type / FC8 diagnostic sub-function / UMAS code, S7 userdata subfunction, DNP3 first object group, IEC104 cause of transmission (U-format: U function bits), BACnet 0 confirmed / 1 unconfirmed, ENIP encapsulation command of a CIP op (null: op is the command itself), S7comm-plus opcode
    "group": pl.Int32(),      # S7 userdata function group; CIP request path class for ENIP; IEC104 APCI format (0 I, 3 U); else null
    "cls": pl.UInt8(),        # CLS_* from core/decode/ics.py
    "name": pl.String(),      # human name of the operation, e.g. "Write Multiple Registers", "PLC Stop"
    "unit": pl.Int32(),       # Modbus unit id, DNP3 destination, IEC104 common address
    "trans": pl.Int32(),      # Modbus transaction id, S7 PDU reference, DNP3 AL sequence
    "ref": pl.Int64(),        # Modbus reference number; S7 first item address (byte<<3|bit); IEC104 IOA
    "count": pl.Int32(),      # Modbus word/bit count; S7 item count
    "area": pl.Int32(),       # S7 area of the first item (0x84 DB ...) ; null elsewhere
    "db": pl.Int32(),         # S7 DB number of the first item
    "exception": pl.Int32(),  # Modbus exception code, S7 error class<<8|code, CIP general status
    "szl_id": pl.Int32(),     # S7 SZL id of a Read SZL
    "block_type": pl.String(),  # S7 block type ('OB','DB','FC','FB',...) for download/upload/delete
    "block_num": pl.Int32(),
    "service": pl.String(),   # S7 PI service name (P_PROGRAM, _DELE, ...); OPC UA message type (HEL, OPN, MSG ...); MMS object (item id, program, file); GOOSE gocbRef; PROFINET DCP station name
    "domain": pl.String(),    # MMS domain id of a domain-specific object name
}


def empty_packets() -> pl.DataFrame:
    return pl.DataFrame(schema=PACKETS)


def empty_ops() -> pl.DataFrame:
    return pl.DataFrame(schema=OPS)
