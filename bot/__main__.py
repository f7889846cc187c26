"""``python -m bot`` runs the CLI (what ``torchrun -m bot ...`` needs)."""

from bot.cli import main

main()
