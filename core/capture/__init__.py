"""Where packets come from: pcap/pcapng files (also .gz) and directories, dumpcap live and its ring
followed as it grows, demo replay paced on packet time. Yields RawBatch record batches; decodes nothing.
"""
