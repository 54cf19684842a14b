"""Corral's core: the job model, its storage in PostgreSQL and the services over it.

The core knows nothing of HTTP: the faces in `api` translate their wire formats into
calls on `core.service.Core`.
"""
