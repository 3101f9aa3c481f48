"""A question and chunks in, an answer with verified citations out."""
