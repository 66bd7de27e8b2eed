"""Stacks only compose constructs from an Environment; no resource logic lives here."""
