"""Corral's HTTP server (Litestar): the native API, the faces of other systems, the CLI."""
