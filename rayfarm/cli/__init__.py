"""The `rayfarm` command."""

from rayfarm.cli.main import app


def main() -> None:
    app()
