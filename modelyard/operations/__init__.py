"""Durable async work: workers that claim operations from the database and run them."""
