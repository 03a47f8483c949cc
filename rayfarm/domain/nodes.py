"""Why the farm refuses a render node's call (the node API answers each with its HTTP status)."""


class NodeRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownNode(NodeRefused):
    """The farm does not know this node id (e.g. its database was replaced): register again."""


class StaleSession(NodeRefused):
    """The session is not the node's current one (it registered again since): register again."""
