"""``python -m netfence``."""

from netfence.cli import main

main()
