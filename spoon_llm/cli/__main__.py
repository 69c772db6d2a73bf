"""``python -m spoon_llm.cli``: the ``spoon-llm`` command line."""

from . import main

main()
