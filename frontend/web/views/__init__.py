"""Blueprints, one module per concern: dashboard, flights, health, errors."""

from __future__ import annotations

from flask import current_app

from web.backend_client import BackendClient


def backend() -> BackendClient:
    """The app's backend client (created in ``create_app``)."""
    client: BackendClient = current_app.extensions["backend"]
    return client
