"""``python -m sectl``: the CLI, also as ``torchrun --nproc_per_node N -m sectl train ...``."""

from sectl.cli.app import main

if __name__ == "__main__":
    main()
