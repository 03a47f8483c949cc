"""Why the farm refuses a render node's call (the node API answers each with its HTTP status)."""


class NodeRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownNode(NodeRefused):
    """The farm does not know this node id (e.g. its database was replaced): register again."""


class StaleSession(NodeRefused):
    """The session is not the node's current one (it registered again since): register again."""


def protocol_refusal(node: int, node_version: str, server: int, oldest: int, server_version: str) -> str | None:
    """Why a node speaking worker protocol ``node`` cannot work with this server (None: it can). Adjacent
    versions talk: a server serves every protocol from ``oldest`` to its own ``server``."""
    if node > server:
        return (f"This node speaks worker protocol {node} (rayfarm {node_version or 'unknown'}), newer than this "
                f"server's {server} (rayfarm {server_version}): upgrade the server first, then the nodes, or run "
                f"this node with rayfarm {server_version}.")
    if node < oldest:
        return (f"This node speaks worker protocol {node} (rayfarm {node_version or 'unknown'}), which this server "
                f"(rayfarm {server_version}) no longer serves (protocols {oldest} to {server}): upgrade the node "
                f"to rayfarm {server_version}, e.g. pip install --upgrade 'rayfarm=={server_version}'.")
    return None
