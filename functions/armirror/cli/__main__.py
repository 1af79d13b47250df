"""``python -m armirror.cli``: the same as the ``armirror`` console script."""

from armirror.cli import main

main()
