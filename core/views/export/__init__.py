"""Evidence that leaves the console: the incident bundle, the plant report in HTML."""
