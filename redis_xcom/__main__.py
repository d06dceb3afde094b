"""``python -m redis_xcom``: the same as the ``redis-xcom`` command."""

import sys

from redis_xcom.ops.cli import main

sys.exit(main())
