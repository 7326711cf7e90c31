"""Entities, validation rules from the seeds and typed errors. No I/O lives here."""
