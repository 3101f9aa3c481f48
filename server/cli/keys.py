"""`ragqa keys create|list|revoke`: the API keys callers present, with roles and collections."""

from __future__ import annotations

import click

from server.cli.common import print_json, services_of
from server.keys import ROLES, KeyStoreError


@click.group()
def keys() -> None:
    """API keys: each a role (reader: ask and search; writer: also add and delete documents;
    admin: everything) in some collections or all. Once a key exists, every API call needs
    one (RAGQA_SERVER__API_KEY stays an admin key)."""


@keys.command()
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--collection", "-c", "collections", multiple=True,
              help="A collection the key may use (repeatable); none: all of them.")  # fmt: skip
@click.option("--name", default="", help="Who or what the key is for.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create(
    ctx: click.Context, role: str, collections: tuple[str, ...], name: str, as_json: bool
) -> None:
    """Create a key; its secret is printed once and stored only as a hash."""
    key, secret = services_of(ctx).keys.create(name=name, role=role, collections=collections)
    if as_json:
        print_json({**key.to_dict(), "secret": secret})
        return
    where = ", ".join(key.collections) or "all collections"
    click.echo(f"Created {key.role} key {key.id} for {where}. Its secret, shown only now:")
    click.echo(secret)


@keys.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """List the keys (never their secrets), revoked ones marked."""
    found = services_of(ctx).keys.list()
    if as_json:
        print_json({"keys": [k.to_dict() for k in found]})
        return
    for k in found:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        where = ",".join(k.collections) or "all"
        click.echo(f"{k.id}\t{k.role}\t{where}\t{state}\t{k.created_at}\t{k.name}")


@keys.command()
@click.argument("key_id")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key at once (by the id `ragqa keys list` shows)."""
    try:
        key = services_of(ctx).keys.revoke(key_id)
    except KeyStoreError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Revoked {key.role} key {key.id} ({key.name or 'no name'}) at {key.revoked_at}.")
