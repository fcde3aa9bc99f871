"""Packets to sessions: connections with TCP state, volumes, ICS operations, TLS and RDP facts.

schema (states, SESSIONS, SESSION_OPS, ENDPOINTS, packet refs), table (the open-session table),
segments (packets to per-session segments), sessions (SessionTracker, session_ops).
"""
