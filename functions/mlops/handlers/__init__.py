"""Lambda handlers: thin adapters from AWS events to the domain. One module per function."""
