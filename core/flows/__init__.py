"""Packets to sessions: connections with TCP state, volumes, ICS operations, TLS and RDP facts.
"""
