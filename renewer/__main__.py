"""``python -m renewer``: the operator CLI (:mod:`renewer.cli`)."""

import sys

from renewer.cli import main

sys.exit(main())
