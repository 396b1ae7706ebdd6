"""Architecture descriptions: frozen dataclasses, a strict YAML loader, presets."""
