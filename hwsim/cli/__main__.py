"""``python -m hwsim.cli``."""

from . import run

run()
