"""`python -m plantwatch` is the `plantwatch` command."""

from plantwatch.tui.cli import main

if __name__ == "__main__":
    main()
