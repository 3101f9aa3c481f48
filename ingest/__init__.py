"""Files to pages to chunks to the index."""
