"""Request dependencies and parameter types every face shares."""

from litestar.di import NamedDependency

from core.service import Core

# the core, injected into every handler by name
CoreDep = NamedDependency[Core]
