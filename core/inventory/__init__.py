"""Devices: identity (MAC, addresses, names), vendor from the OUI, zone from the zones file, role by
behaviour with its reasons.
"""
