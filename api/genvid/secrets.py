"""`/v1/secrets/...`, also served without `/v1`: secrets with the semantics of Vault's KV
version 1 store, kept encrypted by `core.vault` (docs/genvid.md#secrets). Every route,
reads included, is for admin tokens only."""

from typing import Annotated, Final

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter

from api.access import access
from api.params import CoreDep

SecretId = Annotated[str, PathParameter(description="^[A-Za-z0-9_.-]{1,128}$")]


class SecretIds(msgspec.Struct, kw_only=True):
    """Every secret id, sorted: never a value."""

    keys: list[str]


class Empty(msgspec.Struct):
    """`{}`: what a write answers."""


class SecretsController(Controller):
    path = "/secrets"
    tags = ["genvid"]  # noqa: RUF012 (Litestar reads it from the class)

    @get("/list", summary="Every secret id (ids only)", opt=access("admin"))
    async def ids(self, core: CoreDep) -> SecretIds:
        return SecretIds(keys=await core.vault.list())

    @get(
        "/secret/{secret_id:str}",
        summary="One secret's map of names to values",
        opt=access("admin"),
    )
    async def secret(self, core: CoreDep, secret_id: SecretId) -> dict[str, str]:
        return await core.vault.get(secret_id)

    @post(
        "/secret/{secret_id:str}",
        status_code=200,
        summary="Store a map of names to values under the id, replacing any previous one",
        opt=access("admin"),
    )
    async def put(
        self, core: CoreDep, secret_id: SecretId, data: JSONBody[dict[str, object]]
    ) -> Empty:
        await core.vault.put(secret_id, data)
        return Empty()

    @delete(
        "/secret/{secret_id:str}",
        status_code=200,
        summary="Delete a secret (any request body is ignored)",
        opt=access("admin"),
    )
    async def remove(self, core: CoreDep, secret_id: SecretId) -> Empty:
        await core.vault.delete(secret_id)
        return Empty()


SECRETS_ROUTES: Final = [SecretsController]
