"""`ictcontact simulate` (being built)."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise SystemExit("ictcontact simulate: not available yet")
