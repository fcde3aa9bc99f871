"""Zeek logs in place of packets: a Zeek cluster decodes, plantwatch scores.

reader (TSV with #fields headers, or the field order of a header-less ICSNPP log; JSON lines;
gzip or not) -> conn (conn.log / open_conn.log to the sessions schema of
plantwatch.core.flows.sessions) + icsops (ICS logs to operations keyed like core/decode/ics.py)
+ facts (ssl joined to x509, rdp; dns and dhcp names) -> build (one sessions frame with its
operations, joined by the Zeek `uid`) -> run (the same DeviceInventory, Detector and store as
the packet path) ; follow (a log directory as Zeek's logger rotates it, for `plantwatch sensor`).

Evidence: every log file read becomes a row of `captures`, and a fact's reference is (that
capture id, the line number in the file) where the packet path puts (capture id, frame); the line
holds the Zeek uid.
"""
