"""`python -m litegate` runs the CLI."""

import sys

from litegate.service.cli import main

sys.exit(main())
