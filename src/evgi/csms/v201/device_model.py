"""2.x device-model shapes: components and variables as the messages carry them."""

from __future__ import annotations

from typing import Any

from evgi.csms.charge_point import VariableRef
from evgi.storage.charging import VariableRecord


def component(ref: VariableRef) -> dict[str, Any]:
    evse: dict[str, Any] | None = None
    if ref.evse_id is not None:
        evse = {"id": ref.evse_id, "connector_id": ref.connector_id}
    return {"name": ref.component, "instance": ref.component_instance, "evse": evse}


def variable(ref: VariableRef) -> dict[str, Any]:
    return {"name": ref.variable, "instance": ref.variable_instance}


def record(
    component_: dict[str, Any],
    variable_: dict[str, Any],
    attribute_type: str | None,
    value: str | None,
    mutability: str | None = None,
) -> VariableRecord:
    """A variable as a message names it (snake_case keys), ready to store."""
    evse = component_.get("evse") or {}
    return VariableRecord(
        component=component_["name"],
        component_instance=component_.get("instance"),
        evse_id=evse.get("id"),
        connector_id=evse.get("connector_id"),
        variable=variable_["name"],
        variable_instance=variable_.get("instance"),
        attribute_type=attribute_type or "Actual",
        value=value,
        mutability=mutability,
    )
