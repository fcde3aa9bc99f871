"""plantwatch: learns the pattern of life of an industrial plant's network and explains what deviates.

`plantwatch.core` is the capture-and-score pipeline (no UI libraries); `plantwatch.tui` is the
click CLI and the Textual console; `plantwatch.demo_data` holds the bundled demo plant.
"""

__version__ = "0.1.0"
