"""The out-of-band control API under /_hyperpod/: what the AWS wire shape cannot carry."""

from hyperpod_local.admin.routes import admin_app

__all__ = ["admin_app"]
