"""How many nodes one Batch node operation may name: the limits the model's documentation gives
beyond its own length constraints (spec 6.9 to 6.11, 15.2), which the wire already checks."""

from __future__ import annotations

from hyperpod_local.domain.errors import ValidationError

# BatchDeleteClusterNodes: "If you need to delete more than 99 instances, contact Support"
# (the model allows 3000), and "up to 50 NodeLogicalIds ... with a combined maximum of 50
# identifiers" (the model allows 99).
MAX_DELETE_NODE_IDS = 99
MAX_DELETE_LOGICAL_IDS = 50
MAX_DELETE_COMBINED = 50
# BatchReplaceClusterNodes and BatchRebootClusterNodes: "You can replace (reboot) up to 25
# nodes in a single request", whichever list names them.
MAX_NODES_PER_REQUEST = 25

_OPERATION_NAMES = {
    "replace": "BatchReplaceClusterNodes",
    "reboot": "BatchRebootClusterNodes",
    "delete": "BatchDeleteClusterNodes",
}


def check_node_counts(action: str, node_ids: list[str], logical_ids: list[str]) -> None:
    """Raise the ValidationException AWS documents for a request that names too many nodes.

    A list over its own limit is worded as Coral words a length constraint, every such list in
    one message; only when each list is within its own limit is their sum checked. Identifiers
    are counted as given: a node named twice counts twice, as the documentation counts
    identifiers."""
    if action == "delete":
        violations = [
            _too_long(node_ids, "nodeIds", MAX_DELETE_NODE_IDS),
            _too_long(logical_ids, "nodeLogicalIds", MAX_DELETE_LOGICAL_IDS),
        ]
        found = [v for v in violations if v is not None]
        if found:
            noun = "error" if len(found) == 1 else "errors"
            raise ValidationError(f"{len(found)} validation {noun} detected: " + "; ".join(found))
        # The combined maximum is in NodeLogicalIds' documentation; NodeIds alone keep 99.
        limit = MAX_DELETE_COMBINED if logical_ids else None
    else:
        limit = MAX_NODES_PER_REQUEST
    total = len(node_ids) + len(logical_ids)
    if limit is not None and total > limit:
        raise ValidationError(
            f"{_OPERATION_NAMES[action]} accepts a combined maximum of {limit} NodeIds and "
            f"NodeLogicalIds in a single request; this request has {total} "
            f"({len(node_ids)} NodeIds and {len(logical_ids)} NodeLogicalIds)."
        )


def _too_long(values: list[str], path: str, limit: int) -> str | None:
    if len(values) <= limit:
        return None
    return (
        f"Value '[{', '.join(values)}]' at '{path}' failed to satisfy constraint: Member must "
        f"have length less than or equal to {limit}"
    )
