"""An EventBridge target: PutEvents with boto3 onto an event bus, up to 10 events a call.

The endpoint is AWS_ENDPOINT_URL_EVENTS when set (moto, LocalStack), else whatever boto3
finds itself (AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL, or real EventBridge); the
credentials are boto3's usual ones. Each event goes to the bus in its cluster's region.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from typing import Any

from hyperpod_local.outlets.targets import DELIVERED, Envelope, Outcome, Result
from hyperpod_local.startup import StartupError

# PutEvents takes at most 10 entries a call.
MAX_ENTRIES = 10
# The entry errors EventBridge documents as retryable; every other one is final.
_RETRYABLE_ENTRY_ERRORS = frozenset({"InternalFailure", "ThrottlingException"})
# Whole-call errors worth another try: the service is busy or failing.
_RETRYABLE_CALL_ERRORS = frozenset(
    {"ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable"}
)
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_EVENTS"


class EventBridgeTarget:
    batch_size = MAX_ENTRIES

    def __init__(self, spec: str, bus: str, source: str | None) -> None:
        try:
            import boto3
        except ImportError:
            raise StartupError(
                f"--events-to {spec} needs boto3, which is not installed: "
                "pip install 'hyperpod-local[eventbridge]'"
            ) from None
        self.spec = spec
        self.bus = bus
        # Real EventBridge refuses aws.* sources to PutEvents (NotAuthorizedForSource): for
        # it, name another source; moto and LocalStack take aws.sagemaker as HyperPod sends it.
        self.source = source
        self._session = boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, region: str) -> Any:
        from botocore.config import Config

        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._session.client(
                    "events",
                    region_name=region,
                    endpoint_url=os.environ.get(ENDPOINT_VARIABLE) or None,
                    # The delivery loop retries with its own backoff, and must not be held
                    # by botocore's.
                    config=Config(
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        connect_timeout=5,
                        read_timeout=10,
                    ),
                )
            return self._clients[region]

    def send(self, envelopes: list[Envelope]) -> list[Result]:
        results: list[Result | None] = [None] * len(envelopes)
        by_region: dict[str, list[int]] = {}
        for index, envelope in enumerate(envelopes):
            by_region.setdefault(str(envelope["region"]), []).append(index)
        for region, indexes in by_region.items():
            for index, result in zip(
                indexes, self._put(region, [envelopes[i] for i in indexes]), strict=True
            ):
                results[index] = result
        return [result or Result(Outcome.RETRY, "not sent") for result in results]

    def _put(self, region: str, envelopes: list[Envelope]) -> list[Result]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        entries = [self._entry(envelope) for envelope in envelopes]
        try:
            answer = self._client(region).put_events(Entries=entries)
        except NoCredentialsError as error:
            return [Result(Outcome.REJECTED, str(error))] * len(envelopes)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            retry = code in _RETRYABLE_CALL_ERRORS or status >= 500
            return [Result(Outcome.RETRY if retry else Outcome.REJECTED, str(error))] * len(
                envelopes
            )
        except (BotoCoreError, OSError) as error:
            # Cannot connect, timed out: the bus's endpoint is not there (yet).
            return [Result(Outcome.RETRY, f"{type(error).__name__}: {error}")] * len(envelopes)
        results = []
        for entry in answer.get("Entries", []):
            code = entry.get("ErrorCode")
            if not code:
                results.append(DELIVERED)
                continue
            outcome = Outcome.RETRY if code in _RETRYABLE_ENTRY_ERRORS else Outcome.REJECTED
            results.append(Result(outcome, f"{code}: {entry.get('ErrorMessage', '')}"))
        # An answer with fewer entries than sent says nothing of the rest: send them again.
        results += [Result(Outcome.RETRY, "no answer for the entry")] * (
            len(envelopes) - len(results)
        )
        return results

    def _entry(self, envelope: Envelope) -> dict[str, Any]:
        return {
            "Source": self.source or envelope["source"],
            "DetailType": envelope["detail-type"],
            "Detail": json.dumps(envelope["detail"]),
            "Resources": list(envelope["resources"]),
            "Time": datetime.datetime.strptime(envelope["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.UTC
            ),
            "EventBusName": self.bus,
        }
