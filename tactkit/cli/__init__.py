"""The ``tactkit`` command line. Each module here with a ``register(subparsers)`` adds a group."""
