"""Where events go beyond the API: `--events-to` targets (webhooks, EventBridge PutEvents)
and the admin API's live stream, fed from the store's event outbox."""

from hyperpod_local.outlets.dispatcher import EventDispatcher

__all__ = ["EventDispatcher"]
