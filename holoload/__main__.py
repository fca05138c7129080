"""`python -m holoload` entry point."""

from holoload.shell.cli import main

if __name__ == "__main__":
    main()
