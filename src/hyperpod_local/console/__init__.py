"""The web console at /console: a page that shows the fleet live and acts on it through the
same API rules as the AWS wire."""

from hyperpod_local.console.routes import console_app

__all__ = ["console_app"]
