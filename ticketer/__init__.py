"""Ticketer: the human-handoff desk for chatbots (domain package, no Flask-Admin here)."""
