"""Hephaestus, the database engineer: DDL in, verified models and migrations out."""
