"""Devices: identity (MAC, addresses, names), vendor from the OUI, zone from the zones file, role by
behaviour with its reasons.

devices (DeviceInventory, DEVICES), names (DNS/DHCP/NBNS names), roles (infer_roles), edges
(session edges and endpoint counters), oui (vendor table), zones (the zones file).
"""
