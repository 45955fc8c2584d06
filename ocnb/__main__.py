"""`python -m ocnb ...` is the `ocnb` command."""

import sys

from ocnb.cli import main

sys.exit(main())
