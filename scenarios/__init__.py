"""Shipped scenario files (package data). List them with ``hccsim list``."""
