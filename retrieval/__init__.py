"""The index and how to query it: the bottom layer, importing nothing else of ragqa."""
