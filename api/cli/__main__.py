"""`python -m api.cli ...` is `lianzheng ...` (the `up` supervisor starts the API this way)."""

from api.cli import main

main()
