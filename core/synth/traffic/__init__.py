"""Normal traffic of a simulated plant, one module per family: ICS polling and engineering
(ics, ics_stream), office and server traffic (it, it_stream). The *_stream modules hold
StreamActors (endless, for captures of N packets); the others WindowActors (hour by hour).
"""
