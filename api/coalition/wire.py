"""The job bodies of the Coalition API, as Coalition's own tools send them.

Coalition's web page (`js/coalition.js`) sends numbers as strings (every body is decoded
leniently, so `"500"` is 500), the environment as `env` when it adds a job, and the
dependencies as text: `""`, `"12"` or `"12,13"` when it adds a job, and that text split
at its commas (`["12", "13"]`, `[""]` for none) when it edits one. The original server
took all of that; so does Corral, and turns it into the core's own JobSpec and JobEdit.
"""

from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from core.errors import Invalid
from core.models import Environment, JobEdit, JobEditFields, JobFields, JobId, JobSpec

# ids as a list, or as text of comma-separated ids; a list may hold ids as text
DependencyIds = str | list[JobId | Annotated[str, msgspec.Meta(max_length=40)]]
_MAX_ID = 2**63 - 1


class NewJob(JobFields, forbid_unknown_fields=True, kw_only=True):
    """A job to create."""

    dependencies: DependencyIds = msgspec.field(default_factory=list)
    # the web page's name for `environment`
    env: Environment | UnsetType = UNSET

    def spec(self) -> JobSpec:
        fields = msgspec.structs.asdict(self)
        del fields["env"]
        fields["dependencies"] = dependency_ids(self.dependencies)
        if self.env is not UNSET:
            if self.environment and self.environment != self.env:
                raise Invalid(_BOTH)
            fields["environment"] = self.env
        return msgspec.convert(fields, JobSpec)


class JobChange(JobEditFields, forbid_unknown_fields=True, kw_only=True):
    """Changes to one job; a field left out stays as it is."""

    dependencies: DependencyIds | UnsetType = UNSET
    env: Environment | UnsetType = UNSET

    def edit(self) -> JobEdit:
        fields = {k: v for k, v in msgspec.structs.asdict(self).items() if v is not UNSET}
        fields.pop("env", None)
        if self.dependencies is not UNSET:
            fields["dependencies"] = dependency_ids(self.dependencies)
        if self.env is not UNSET:
            if self.environment is not UNSET and self.environment != self.env:
                raise Invalid(_BOTH)
            fields["environment"] = self.env
        return msgspec.convert(fields, JobEdit)


_BOTH = "env and environment differ: env is another name for environment, give one of them"


def dependency_ids(value: DependencyIds) -> list[int]:
    """The job ids of `value`; empty entries (`""`, `"12,"`) are skipped."""
    parts = value.split(",") if isinstance(value, str) else value
    ids: list[int] = []
    for part in parts:
        if isinstance(part, int):
            ids.append(part)
            continue
        text = part.strip()
        if not text:
            continue
        # ASCII digits only (str.isdigit() also takes '²', which int() refuses), and few
        # enough of them for int() to be cheap
        if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > _MAX_ID:
            raise Invalid(f"dependencies: {part!r} is not a job id")
        ids.append(int(text))
    return ids
