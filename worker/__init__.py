"""`corral worker`: the render-node agent. It talks to the server over HTTP only and
imports nothing of the server."""
