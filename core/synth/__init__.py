"""Synthetic traffic: frame builders, pcap/pcapng writers and the one plant simulator shared by the
demo generator, the benchmark and the tests. Never used by the product's runtime path.

frames/      builders of whole frames and payloads (wire, tcpsession, ics_plc, ics_field, it_payloads)
pcapwriter   deterministic pcap / pcapng (optionally gzip) writers
clock        packet time units, ISO stamps, the day rhythm (office hours, working days)
plant        PlantShape (the parameters a scenario varies), zones, hosts, SPAN-port legs
actors       window actors (hour by hour) and stream actors (N packets), and their drivers
traffic/     normal traffic per family: ics, it (hourly) and ics_stream, it_stream (streams);
             field, field_cip_iec104, field_poll: one conversation per field protocol (S7, Modbus,
             DNP3, EtherNet/IP + CIP, IEC 104) for polls and for the attacks' operations
attack       attack scenarios with their ground truth (today: the seed incident)
demo         the demo plant's layout and generate() (demo_data/generate.py is its command line)
mixed        the benchmark plant's layout and generate() (bench/mixed.py caches it for make bench)
"""
