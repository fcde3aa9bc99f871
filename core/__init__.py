"""plantwatch core: capture, decoding, sessions, devices, store. Never imports textual, rich or tui."""
