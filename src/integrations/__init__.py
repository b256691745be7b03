"""Adapters that run the tool from other systems (schedulers); nothing in ``src`` imports them."""
