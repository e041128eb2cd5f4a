"""`python -m scaimind_local` is the `scaimind-local` command."""

import sys

from ._cli import main

sys.exit(main())
