"""Widgets of the console: tables that update in place, status bar, filter bar, charts."""
