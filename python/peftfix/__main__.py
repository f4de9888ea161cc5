"""`python -m peftfix` is the `peftfix` command."""

from peftfix.cli import main

if __name__ == "__main__":
    main()
