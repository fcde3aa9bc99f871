"""Synthetic traffic: frame builders, pcap/pcapng writers and the plant simulator shared by the demo
generator, the benchmark and the tests. Never used by the product's runtime path.
"""
