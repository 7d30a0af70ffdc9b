"""``python -m hypernet_lib.cli``: the character-level language model's command line."""
import sys

from .charlm import main

if __name__ == "__main__":
    sys.exit(main())
