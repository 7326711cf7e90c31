"""Use cases as plain functions, one module per resource family."""
