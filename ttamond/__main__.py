"""`python -m ttamond` is the `ttamond` command."""

import sys

from ttamond.cli import main

sys.exit(main())
