"""NIE service: the enhance-and-score HTTP API and web page on Ray Serve.

- :mod:`serve_app.config`: the typed service settings (:class:`~serve_app.config.ServiceConfig`);
- :mod:`nie_tracking.loading`: models from checkpoints or the MLflow registry;
- :mod:`serve_app.deployments`: the Enhancer (one per model) and Scorer deployments;
- :mod:`serve_app.results`: the ResultStore deployment (recent results for the web page);
- :mod:`serve_app.errors`: errors shared by the deployments and the ingress;
- :mod:`serve_app.api`: the FastAPI ingress;
- :mod:`serve_app.app`: ``build_app(config)`` and the ``serve_app.app:build`` builder;

Importing this package imports nothing heavy; Ray is imported by the modules that need it.
"""

from __future__ import annotations
