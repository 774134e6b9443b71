"""``aisp serve`` with one extra model, ``slow_fake``: the shipped FakeModel with a cost per frame.

The crash test runs this file as its server process: it registers the model, then hands over to
the real ``aisp`` command line (``aisp serve ...``), so everything else is the production path.
Usage: ``python tests/store/slow_serve.py COST_MS serve --port N``.
"""

from __future__ import annotations

import sys


def main() -> None:
    cost_ms = float(sys.argv[1])
    from aisp.models.fake import FakeModel
    from aisp.models.registry import register_model

    register_model("slow_fake", lambda: FakeModel("slow_fake", cost_ms=cost_ms), backend="fake",
                   thread_safe=True, description=f"FakeModel with {cost_ms} ms per frame (crash test)")
    from aisp.cli.main import main as aisp_main

    aisp_main(sys.argv[2:])


if __name__ == "__main__":
    main()
