"""Compute targets: where a service's replicas run. One protocol, several backends."""
