"""Adapting the generator to a team's documents (LoRA / prompt tuning); built in a later issue."""
