"""Drivers that join the stages: offline ingest of captures into a store, and the long-running sensor.
"""
