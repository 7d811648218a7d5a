"""Run the client: ``python -m verify.client``."""

import sys

from verify.client.cli import main

sys.exit(main())
