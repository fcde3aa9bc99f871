"""plantwatch.core: the capture-and-score pipeline, one package per stage in pipeline order:
capture, decode, flows, inventory, detection, store, views, pipeline, synth. Never imports textual,
rich or plantwatch.tui."""
