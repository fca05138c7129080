"""From text to models: units, validation with key paths, budget profiles, secrets."""
