"""A group's software image: where an update in progress keeps its state in the group's
spec, and the image a new instance of the group gets."""

from __future__ import annotations

from hyperpod_local.domain.model import DEFAULT_IMAGE_ID, LATEST_IMAGE_RELEASE, InstanceGroup

UPDATE_KEY = "_software_update"


def desired_image(group: InstanceGroup) -> tuple[str, str]:
    """(image id, release) a new instance of the group gets: during a software update the
    update's target (its source while rolling back), else the group's own."""
    update = group.spec.get(UPDATE_KEY)
    if update and update["Status"] == "InProgress":
        return update["To"]["ImageId"], update["To"]["Release"]
    if update and update["Status"] == "RollbackInProgress":
        return update["From"]["ImageId"], update["From"]["Release"]
    return (
        group.spec.get("ImageId", DEFAULT_IMAGE_ID),
        group.spec.get("ImageReleaseVersion", LATEST_IMAGE_RELEASE),
    )
