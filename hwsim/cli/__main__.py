"""``python -m hwsim.cli``."""

import sys

from .main import main

sys.exit(main())
