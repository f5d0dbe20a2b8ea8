"""python3 -m mpk info|check|convert -- see mpk._cli."""

import sys

from ._cli import main

sys.exit(main())
