"""Node pools (the Renderbus hardware configs) and what the farm's nodes offer.

A pool is a worker tag (`rayfarm worker run --tags gpu,fast`): each tag a node ever registered with has a
row and a stable id; row 1, the empty tag, is "Default" (any node). What the farm offers — pools, software
versions — is read from the nodes seen lately (``RECENT_SECONDS``) that an administrator has not disabled
or set draining: a node that is down for the night still counts, one gone for more than a day does not.
"""

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store.schema import pools, workers

DEFAULT_ID = 1
DEFAULT_MODEL = "Default"
RECENT_SECONDS = 24 * 3600


def add_tags(conn: Connection, tags: list[str], now: float) -> None:
    """Give every tag a pool (a registering node's tags; concurrent registrations of one new tag are fine)."""
    wanted = sorted({tag for tag in tags if tag})
    if not wanted:
        return
    have = set(conn.scalars(select(pools.c.tag).where(pools.c.tag.in_(wanted))))
    missing = [tag for tag in wanted if tag not in have]
    if missing:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(pools).values([{"tag": tag, "created_at": now} for tag in missing])
                     .on_conflict_do_nothing(index_elements=["tag"]))


def recent_nodes(conn: Connection, now: float) -> list:
    """(software, tags) of the enabled nodes seen in the last ``RECENT_SECONDS``."""
    return conn.execute(select(workers.c.software, workers.c.tags).where(
        workers.c.last_seen >= now - RECENT_SECONDS, workers.c.disabled.is_(False),
        workers.c.draining.is_(False))).all()


def offered(conn: Connection, now: float) -> tuple[dict[str, set[str]], list[dict]]:
    """What recent nodes offer: {software: versions}, and the pools [{id, model, tag, nodes}] ("Default" first)."""
    software: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    nodes = recent_nodes(conn, now)
    for row in nodes:
        for name, version in (row.software or {}).items():
            software.setdefault(name, set()).add(version or "")
        for tag in set(row.tags or []):
            counts[tag] = counts.get(tag, 0) + 1
    listed = [{"id": DEFAULT_ID, "model": DEFAULT_MODEL, "tag": None, "nodes": len(nodes)}]
    if counts:
        rows = conn.execute(select(pools.c.id, pools.c.tag).where(pools.c.tag.in_(sorted(counts)))
                            .order_by(pools.c.id)).all()
        listed += [{"id": row.id, "model": row.tag, "tag": row.tag, "nodes": counts[row.tag]} for row in rows]
    return software, listed


def ids_of(conn: Connection, tags: list[str]) -> list[tuple[int, str]]:
    """(id, tag) of these tags' pools."""
    if not tags:
        return []
    return [tuple(row) for row in conn.execute(select(pools.c.id, pools.c.tag).where(pools.c.tag.in_(tags))
                                               .order_by(pools.c.id))]


def _unknown(what: str) -> ApiError:
    return ApiError(Code.INVALID_PARAMETER, f"This farm has no hardware config {what}; list them with "
                                            f"hardwareConfig/list (\"Default\" is any node).")


def resolve(conn: Connection, ids: list[int]) -> list[str] | None:
    """The node tags of hardware config ids: None (any node) when the list is empty or holds "Default"."""
    if not ids or DEFAULT_ID in ids:
        return None
    found = dict(conn.execute(select(pools.c.id, pools.c.tag).where(pools.c.id.in_(ids))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise _unknown(", ".join(str(i) for i in missing[:10]))
    return sorted({found[i] for i in ids})


def by_model(conn: Connection, model: str) -> list[str] | None:
    """The node tags of a hardware config named by its model ("Default" or a tag): None for "Default"."""
    name = model.strip()
    if name.lower() == DEFAULT_MODEL.lower():
        return None
    if name and conn.scalar(select(pools.c.id).where(pools.c.tag == name)) is not None:
        return [name]
    raise _unknown(ascii(name[:64]))
