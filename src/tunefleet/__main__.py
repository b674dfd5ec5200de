"""``python -m tunefleet``: the ``tunefleet`` command line."""

from tunefleet.cli import main

if __name__ == "__main__":
    main()
