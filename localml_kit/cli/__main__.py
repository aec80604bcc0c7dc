"""``python -m localml_kit.cli``: the same as the ``localml-kit`` command."""

import sys

from localml_kit.cli import main

sys.exit(main())
