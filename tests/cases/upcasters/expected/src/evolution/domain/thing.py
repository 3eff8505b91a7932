"""The Thing aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from typing_extensions import override

from ..aggregates.thing import ThingBase, ThingState
from ..events.thing import (
    AddedWithoutDefault,
    EnumShrunk,
    EnumToStr,
    FieldAddedWithDefault,
    FieldRemoved,
    FieldRenamed,
    ManualByChoice,
    OptionalFieldAdded,
    RateFixed,
    RenamedOntoAnOldName,
    ThreeVersions,
    TypeNarrowed,
    ValueTypeReshaped,
    Widened,
)


class Thing(ThingBase):
    """The Thing."""

    @override
    def apply_field_added_with_default(
        self, event: FieldAddedWithDefault
    ) -> ThingState:
        # TODO: Thing.apply_field_added_with_default: return the ThingState
        # after FieldAddedWithDefault
        raise NotImplementedError("Thing.apply_field_added_with_default")

    @override
    def apply_optional_field_added(self, event: OptionalFieldAdded) -> ThingState:
        # TODO: Thing.apply_optional_field_added: return the ThingState after
        # OptionalFieldAdded
        raise NotImplementedError("Thing.apply_optional_field_added")

    @override
    def apply_field_removed(self, event: FieldRemoved) -> ThingState:
        # TODO: Thing.apply_field_removed: return the ThingState after
        # FieldRemoved
        raise NotImplementedError("Thing.apply_field_removed")

    @override
    def apply_field_renamed(self, event: FieldRenamed) -> ThingState:
        # TODO: Thing.apply_field_renamed: return the ThingState after
        # FieldRenamed
        raise NotImplementedError("Thing.apply_field_renamed")

    @override
    def apply_widened(self, event: Widened) -> ThingState:
        # TODO: Thing.apply_widened: return the ThingState after Widened
        raise NotImplementedError("Thing.apply_widened")

    @override
    def apply_three_versions(self, event: ThreeVersions) -> ThingState:
        # TODO: Thing.apply_three_versions: return the ThingState after
        # ThreeVersions
        raise NotImplementedError("Thing.apply_three_versions")

    @override
    def apply_added_without_default(self, event: AddedWithoutDefault) -> ThingState:
        # TODO: Thing.apply_added_without_default: return the ThingState after
        # AddedWithoutDefault
        raise NotImplementedError("Thing.apply_added_without_default")

    @override
    def apply_type_narrowed(self, event: TypeNarrowed) -> ThingState:
        # TODO: Thing.apply_type_narrowed: return the ThingState after
        # TypeNarrowed
        raise NotImplementedError("Thing.apply_type_narrowed")

    @override
    def apply_enum_shrunk(self, event: EnumShrunk) -> ThingState:
        # TODO: Thing.apply_enum_shrunk: return the ThingState after
        # EnumShrunk
        raise NotImplementedError("Thing.apply_enum_shrunk")

    @override
    def apply_manual_by_choice(self, event: ManualByChoice) -> ThingState:
        # TODO: Thing.apply_manual_by_choice: return the ThingState after
        # ManualByChoice
        raise NotImplementedError("Thing.apply_manual_by_choice")

    @override
    def apply_value_type_reshaped(self, event: ValueTypeReshaped) -> ThingState:
        # TODO: Thing.apply_value_type_reshaped: return the ThingState after
        # ValueTypeReshaped
        raise NotImplementedError("Thing.apply_value_type_reshaped")

    @override
    def apply_enum_to_str(self, event: EnumToStr) -> ThingState:
        # TODO: Thing.apply_enum_to_str: return the ThingState after EnumToStr
        raise NotImplementedError("Thing.apply_enum_to_str")

    @override
    def apply_rate_fixed(self, event: RateFixed) -> ThingState:
        # TODO: Thing.apply_rate_fixed: return the ThingState after RateFixed
        raise NotImplementedError("Thing.apply_rate_fixed")

    @override
    def apply_renamed_onto_an_old_name(self, event: RenamedOntoAnOldName) -> ThingState:
        # TODO: Thing.apply_renamed_onto_an_old_name: return the ThingState
        # after RenamedOntoAnOldName
        raise NotImplementedError("Thing.apply_renamed_onto_an_old_name")
