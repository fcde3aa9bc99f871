"""The console's screens: devices, device, incidents, incident, event log, breaches, packet, help."""
