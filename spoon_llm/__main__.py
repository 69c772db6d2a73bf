"""``python -m spoon_llm``: the ``spoon-llm`` command line."""

from .cli import main

main()
