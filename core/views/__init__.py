"""Read APIs over the store, split by subject: the console's queries, the JSON report, evaluation against
ground truth, the full Wireshark decode of one packet, and safe display of wire strings; the
report's triage section (triage_report.py).
"""
