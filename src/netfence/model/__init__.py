"""The data model: frozen, slotted dataclasses shared by every layer."""
