"""Command lines: ``python -m hypernet_lib.cli`` (installed as ``hypernet-charlm``) trains and samples
    character-level LMs."""
from .charlm import (EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, PROG, UsageError, build_parser,
    cmd_train, train_state_path, cmd_generate, cmd_eval, main)

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIVERGED", "EXIT_INTERRUPTED", "PROG", "UsageError", "build_parser",
           "cmd_train", "train_state_path", "cmd_generate", "cmd_eval", "main"]
