"""`python -m gradxform race ...`: the same as the `gradxform` console script."""

from gradxform.cli import main

raise SystemExit(main())
