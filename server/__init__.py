"""The composition root: settings, wiring, HTTP API, web page and command line."""
