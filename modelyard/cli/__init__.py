"""The `modelyard` command line: typer commands that call `modelyard.client`."""
